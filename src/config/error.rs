//! Configuration errors that always point at the file, line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One error in one input file, printed as `FILE:LINE:COL: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // About the file as a whole (unreadable, not a database): no position.
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The text of a file, kept so byte spans can be turned into line:col.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, ConfigError> {
        match super::files::read_text(path) {
            Ok(text) => Ok(Source { path: path.to_path_buf(), text }),
            Err(message) => Err(ConfigError { file: path.to_path_buf(), line: 0, col: 0, message }),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }

    /// An error located at the start of `span`.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, col) = self.line_col(span.start);
        ConfigError { file: self.path.clone(), line, col, message: message.into() }
    }

    /// An error about the file as a whole (line 1, column 1).
    pub fn whole(&self, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.path.clone(), line: 1, col: 1, message: message.into() }
    }
}
