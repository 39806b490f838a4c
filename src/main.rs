use clap::Parser as _;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = regauth::cli::Cli::parse();
    let settings = match regauth::config::Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {}", regauth::error::Report(&error));
            return std::process::ExitCode::FAILURE;
        }
    };
    regauth::telemetry::init(settings.server.log_format, cli.verbosity());
    match regauth::cli::run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain of causes, each once; errors may quote what was typed or
            // stored, so control characters are escaped: they never drive the terminal.
            let report = regauth::error::Report(error.as_ref()).to_string();
            eprintln!("error: {}", regauth::domain::text::printable(&report));
            std::process::ExitCode::FAILURE
        }
    }
}
