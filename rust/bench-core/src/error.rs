//! Errors a task reports as one line: usage problems exit with code 2, everything else with 1.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BenchError {
    /// Bad input: the job file, its hyperparameters, or a dataset that is missing or corrupt.
    #[error("{0}")]
    Usage(String),
    /// A failure while running the work itself.
    #[error("{0}")]
    Run(String),
    /// The framework lacks this algorithm or option: recorded as `unsupported`, never substituted.
    #[error("{0}")]
    Unsupported(String),
}

impl BenchError {
    pub fn usage(message: impl Into<String>) -> Self {
        BenchError::Usage(message.into())
    }

    pub fn run(message: impl Into<String>) -> Self {
        BenchError::Run(message.into())
    }

    pub fn unsupported(reason: impl Into<String>) -> Self {
        BenchError::Unsupported(reason.into())
    }

    /// A plan arm the task spec's `unsupported` rules cover: the harness records those before it
    /// plans, so reaching one means the spec and the binary disagree.
    pub fn declared_unsupported(job: &crate::config::Job) -> Self {
        BenchError::Run(format!(
            "{} {}: the task spec's `unsupported` rules should have declined this job before planning",
            job.framework, job.algorithm
        ))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            BenchError::Usage(_) => 2,
            BenchError::Run(_) => 1,
            BenchError::Unsupported(_) => 0,
        }
    }
}

pub type Result<T> = std::result::Result<T, BenchError>;

/// The message on one line whatever it quotes: control characters (a key holding a newline, say)
/// are written as escapes (Python: mlbench.errors.one_line).
pub fn one_line(message: &str) -> String {
    let breaks = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    message.chars().map(|c| if breaks(c) { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// The fitted model, or the error for using a model before `fit`.
pub fn fitted<T>(model: &Option<T>) -> Result<&T> {
    model.as_ref().ok_or_else(|| BenchError::run("model used before fit"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_escapes_control_characters() {
        assert_eq!(super::one_line("unknown field `\r\n`, tab\there"), "unknown field `\\r\\n`, tab\\there");
    }
}
