//! Standard output as a pipe sees it: `seatwarden users list | head -1` closes the pipe early, and
//! that ends the command quietly with exit 0, not with "Broken pipe" and exit 1.

use std::io::{self, Write};
use std::process::ExitCode;

/// Whether an I/O error is the reader having gone away.
pub fn is_closed_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// The same for the csv crate's errors.
pub fn is_closed_pipe_csv(e: &csv::Error) -> bool {
    matches!(e.kind(), csv::ErrorKind::Io(io) if is_closed_pipe(io))
}

/// Prints `bytes` to standard output: exit 0 when written or when the reader closed the pipe, 1
/// for any other failure.
pub fn print_or_quiet(bytes: &[u8]) -> ExitCode {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            super::say(&format!("seatwarden: cannot write to standard output: {e}"));
            ExitCode::from(super::exit::FAILURE)
        }
    }
}
