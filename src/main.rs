use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = regauth::cli::Cli::parse();
    let settings = match regauth::config::Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    regauth::telemetry::init(settings.log_format);
    match regauth::cli::run(cli, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Errors may quote what was typed or stored: never let it drive the terminal.
            eprintln!(
                "error: {}",
                regauth::domain::text::printable(&error.to_string())
            );
            std::process::ExitCode::FAILURE
        }
    }
}
