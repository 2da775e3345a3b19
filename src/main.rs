use clap::Parser;

fn main() {
    let args = conecta::cli::rewrite_aliases(std::env::args().collect());
    let cli = conecta::cli::Cli::parse_from(args);
    let status = conecta::cli::run(cli);
    std::process::exit(status as i32);
}
