//! `parley-loadgen`: see `parley-loadgen --help`.

use std::process::ExitCode;

use clap::Parser as _;
use parley_loadgen::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.to_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("parley-loadgen: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(usize::from(args.threads)).enable_all().build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("parley-loadgen: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };

    // Printed before the run, so the ids are known even if it is interrupted.
    eprintln!(
        "parley-loadgen: run {} -> {}: {} messages over {} conversations (wa_ids {}000000..), wamids wamid.lg.{}.*",
        config.ids.run_id, args.url, config.messages, config.conversations, config.ids.wa_id_prefix, config.ids.run_id,
    );
    let report = match runtime.block_on(parley_loadgen::run(config)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("parley-loadgen: {error}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        eprintln!("{report}");
        println!("{}", report.to_json_line());
    } else {
        println!("{report}");
    }
    if report.errors > 0 || report.ok == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
