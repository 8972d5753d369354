//! The record of how a decision was made, for `meridian explain`.

use super::chain::{Ctx, Tiers};

/// One line of an explanation: a step, its candidates in and out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceStep {
    pub step: String,
    pub input: String,
    pub output: String,
    pub note: String,
}

impl TraceStep {
    pub(crate) fn new(step: &str, ctx: &Ctx, input: &Tiers, output: &Tiers, note: String) -> TraceStep {
        TraceStep { step: step.to_string(), input: render(ctx, input), output: render(ctx, output), note }
    }
}

/// Tiers as `a > b = c`: `>` orders, `=` ties.
fn render(ctx: &Ctx, tiers: &Tiers) -> String {
    tiers
        .iter()
        .map(|t| t.iter().map(|id| ctx.regions[*id].name.as_str()).collect::<Vec<_>>().join(" = "))
        .collect::<Vec<_>>()
        .join(" > ")
}
