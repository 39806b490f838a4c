use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = regauth::cli::Cli::parse();
    regauth::telemetry::init();
    match regauth::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
