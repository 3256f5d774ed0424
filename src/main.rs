use clap::Parser;

fn main() -> anyhow::Result<()> {
    let _config = lamina::config::Config::parse();
    Ok(())
}
