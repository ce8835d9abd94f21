//! Reports: a run's results file rendered as Markdown, JSON and HTML (with charts), the analysis
//! computed from it (speedups, cost, criteria, guidance), two runs compared, the kernels section.
//! May use: `crate::results` and `crate::measure::stats` only; reports read results files, never an
//! engine.

pub mod analysis;
pub mod check;
pub mod compare;
pub mod host;
pub mod html;
pub mod kernels;
pub mod plots;
pub mod slo;
pub mod summary;

pub use summary::{render_and_tell, summarize, summarize_with, write_reports, write_summary, Options};
