//! The `seatwarden` binary: wiring only; everything lives in the library.

fn main() -> std::process::ExitCode {
    seatwarden::cli::main()
}
