//! The record of how a decision was made, for `meridian explain`.

use super::ctx::Ctx;
use super::tiers::Tiers;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{londoner, regions};
    use crate::policy::HealthView;
    use smallvec::smallvec;

    #[test]
    fn tiers_render_as_order_and_ties_by_name() {
        let (rs, client, health) = (regions(), londoner(), HealthView::all_up());
        let ctx = Ctx { regions: &rs, client: &client, health: &health, explain: true, scopes: None };
        let step = TraceStep::new(
            "geo",
            &ctx,
            &smallvec![smallvec![0, 1, 2]],
            &smallvec![smallvec![2], smallvec![1, 0]],
            "n".into(),
        );
        assert_eq!(step.input, "us-east = eu-west = ap-northeast");
        assert_eq!(step.output, "ap-northeast > eu-west = us-east");
        assert_eq!(TraceStep::new("x", &ctx, &Tiers::new(), &Tiers::new(), String::new()).input, "");
    }
}
