//! The `rollcall` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    rollcall::cli::main()
}
