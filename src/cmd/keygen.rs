//! `sealroom keygen --out FILE [--public]`.

use std::path::PathBuf;

use sealroom_protocol::identity::{Identity, PublicIdentity};

use crate::exit::{input_err, CmdResult};

/// Arguments of `sealroom keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Identity file to create (mode 0600). With --public: an existing identity file to read.
    #[arg(long)]
    out: PathBuf,
    /// Print the public half of the identity in FILE (to share with the consortium).
    #[arg(long)]
    public: bool,
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    if args.public {
        let p = PublicIdentity::load(&args.out).map_err(input_err)?;
        print!("{}", p.to_file_json());
        return Ok(());
    }
    let id = Identity::generate().map_err(crate::exit::runtime_err)?;
    id.save(&args.out)
        .map_err(|e| input_err(format!("--out: {e}")))?;
    eprintln!(
        "wrote identity {} (ed25519 {}) to {}",
        id.public().fingerprint(),
        hex::encode(id.public().ed25519),
        args.out.display()
    );
    eprintln!(
        "share the public half: sealroom keygen --out {} --public",
        args.out.display()
    );
    Ok(())
}
