//! `sealroom scenario check FILE [--json]`: validate a scenario file, its
//! datasets and key files, and print what the session would be.
//!
//! The check runs everything `sealroom run` checks before it starts work:
//! the datasets are read through the commitment's own line rules, and the
//! policy is compared with what `run`'s simulated node can meet (a note,
//! since a networked session with a TEE node is fine). Errors exit 2;
//! warnings and notes do not.

use std::path::{Path, PathBuf};

use sealroom_protocol::scenario::{Problem, Scenario, Severity};

use crate::exit::{input_err, CmdResult};

/// Arguments of `sealroom scenario`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Validate a scenario (exit 2 with every problem as file:line: field: message).
    Check {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Print one JSON object on stdout, valid or not.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    match args.action {
        Action::Check { file, json } => check(&file, json),
    }
}

fn check(file: &Path, json: bool) -> CmdResult {
    let loaded = Scenario::load(file);
    let problems: Vec<Problem> = match &loaded {
        Ok(s) => s.warnings.clone(),
        Err(e) => e.problems.clone(),
    };
    if json {
        // Always one object, so a tool reading stdout gets the problems too.
        println!("{}", json_report(file, &loaded));
    }
    let s = match loaded {
        Ok(s) => s,
        // Every problem, warnings included, on stderr; exit 2.
        Err(e) => return Err(input_err(e)),
    };
    if !json {
        let count = |sev: Severity, word: &str| {
            let n = problems.iter().filter(|p| p.severity == sev).count();
            (n > 0).then(|| format!("{n} {word}{}", if n == 1 { "" } else { "s" }))
        };
        let extra: Vec<String> = [
            count(Severity::Warning, "warning"),
            count(Severity::Note, "note"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if extra.is_empty() {
            println!("{}: valid", file.display());
        } else {
            println!("{}: valid ({})", file.display(), extra.join(", "));
        }
        print_summary(&s);
    }
    for p in &problems {
        eprintln!("{}", p.display(file));
    }
    Ok(())
}

/// `{"valid", "file", "problems": [{file, line, field, message, severity}], …}`
/// and, when valid, what the session would be.
fn json_report(
    file: &Path,
    loaded: &Result<Scenario, sealroom_protocol::scenario::ScenarioError>,
) -> serde_json::Value {
    let problems = match loaded {
        Ok(s) => &s.warnings,
        Err(e) => &e.problems,
    };
    let problems: Vec<serde_json::Value> = problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "file": file.display().to_string(),
                "line": p.line,
                "field": p.field,
                "message": p.message,
                "severity": p.severity,
            })
        })
        .collect();
    let mut v = serde_json::json!({
        "valid": loaded.is_ok(),
        "file": file.display().to_string(),
        "problems": problems,
    });
    if let (Ok(s), Some(o)) = (loaded, v.as_object_mut()) {
        o.insert("session".into(), s.session.name.clone().into());
        o.insert(
            "parties".into(),
            s.parties
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "dataset": s.resolve(&p.dataset).display().to_string(),
                    })
                })
                .collect(),
        );
        o.insert("owner".into(), s.owner.name.clone().into());
        for (k, val) in [
            ("model", serde_json::to_value(&s.model)),
            ("training", serde_json::to_value(&s.training)),
            ("policy", serde_json::to_value(&s.policy)),
            ("chain", serde_json::to_value(&s.chain)),
        ] {
            o.insert(k.into(), val.unwrap_or_default());
        }
    }
    v
}

/// The session in the scenario file's own words.
fn print_summary(s: &Scenario) {
    let t = &s.training;
    println!("  session   {}", s.session.name);
    println!(
        "  parties   {}",
        s.parties
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  owner     {}{}",
        s.owner.name,
        if s.owner.validation.is_some() {
            ", holds the validation set"
        } else {
            ""
        }
    );
    println!(
        "  schema    {} {} features, label {} ({}), {}",
        s.schema.features.len(),
        s.schema.feature_type.as_str(),
        s.schema.label,
        match s.schema.task {
            sealroom_protocol::scenario::Task::Classification =>
                format!("{} classes", s.schema.label_classes),
            sealroom_protocol::scenario::Task::Regression => format!(
                "a number: regression{}",
                if s.schema.standardize_target {
                    ", target standardised"
                } else {
                    ""
                }
            ),
        },
        s.schema.preprocessing.as_str()
    );
    println!("  model     {}", s.model.describe());
    let mut training = format!(
        "{} epochs, batch {}, {} lr {}",
        t.epochs,
        t.batch_size,
        t.optimizer.as_str(),
        t.learning_rate
    );
    if t.momentum != 0.0 {
        training.push_str(&format!(" momentum {}", t.momentum));
    }
    if t.weight_decay != 0.0 {
        training.push_str(&format!(", weight_decay {}", t.weight_decay));
    }
    training.push_str(&format!(", seed {}", t.seed));
    if !t.compute.is_cpu() {
        training.push_str(&format!(
            ", on {} (a node built with the `cuda` feature, on a GPU)",
            t.compute.as_str()
        ));
    }
    if let Some(v) = t.validation_split {
        training.push_str(&format!(", validation_split {v}"));
    }
    println!("  training  {training}");
    println!(
        "  policy    accepted_kinds {}; allow_simulation {}",
        s.policy
            .accepted_kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        s.policy.allow_simulation
    );
    println!("  chain     {}", s.chain.target);
}
