use clap::Parser;

fn main() {
    let cli = congvan::cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("congvan: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    match rt.block_on(congvan::cli::run(cli)) {
        Ok(()) => {}
        Err(f) => {
            eprintln!("congvan: {}", f.message);
            std::process::exit(f.code);
        }
    }
}
