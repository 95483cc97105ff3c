//! `sealroom model (eval|predict|export)`: the owner's opened model outside
//! sealroom — the `--out` file of `owner fetch-model`/`owner open-model`, or
//! `sealroom run`'s `DIR/model.bin`.
//!
//! The model bytes carry the weights, the preprocessing statistics and the
//! architecture's digest, but not the names of the feature columns or the
//! label (docs/trainer.md, "Model bytes"). Those come from `--scenario FILE`
//! (the scenario it was trained under; checked against the digest) or
//! `--record PATH` (the owner's member record, which holds the manifest the
//! owner consented to and the hash of the model it accepted: a file, or a
//! directory of records searched for the one that accepted this model).
//! `eval` and `predict` need one of the two; `export` writes the names into
//! the model card when it has them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use sealroom_member::record::RECORD_FORMAT;
use sealroom_member::MemberRecord;
use sealroom_protocol::fsutil::AtomicFile;
use sealroom_protocol::hash::sha256;
use sealroom_protocol::scenario::{Scenario, Schema};
use sealroom_trainer::ml::export::{safetensors_bytes, Provenance};
use sealroom_trainer::ml::{Dataset, LoadedModel};

use crate::exit::{input_err, runtime_err, CmdResult, Failure};

/// The weights file `export` writes.
const WEIGHTS_FILE: &str = "model.safetensors";
/// The model card `export` writes.
const CARD_FILE: &str = "model-card.json";

/// `sealroom model …`.
#[derive(clap::Subcommand)]
pub enum ModelCmd {
    /// Quality of an opened model on a labelled CSV: accuracy and confusion matrix, or R² and RMSE for a regressor.
    Eval(DataArgs),
    /// One prediction per CSV row: the class and every class probability.
    Predict(DataArgs),
    /// Write model.safetensors (PyTorch-convention float32 tensors) and
    /// model-card.json (architecture, features, preprocessing, provenance).
    Export(ExportArgs),
}

/// Where the feature names come from.
#[derive(clap::Args)]
pub struct NamesArgs {
    /// The scenario the model was trained under (feature and label columns,
    /// training settings); it must describe this model's architecture.
    #[arg(long, conflicts_with = "record")]
    scenario: Option<PathBuf>,
    /// The owner's member record of the session (KEYFILE.sessions/<session>.json,
    /// or a run's DIR/owner/state/<session>.json), or a directory of records:
    /// the one that accepted this model (by its SHA-256) is used.
    #[arg(long)]
    record: Option<PathBuf>,
}

/// Arguments of `eval` and `predict`.
#[derive(clap::Args)]
pub struct DataArgs {
    /// The opened model (`owner fetch-model --out`, `sealroom run`'s DIR/model.bin).
    model: PathBuf,
    /// CSV with a header naming every feature column (any order; other
    /// columns are ignored) and, for `eval`, the label column.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    names: NamesArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The opened model.
    model: PathBuf,
    /// Directory to write model.safetensors and model-card.json into (created if absent).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    names: NamesArgs,
    /// The hash of the `completed` report that names this model (default:
    /// the one in --record, when given).
    #[arg(long)]
    report_hash: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(cmd: ModelCmd) -> CmdResult {
    match cmd {
        ModelCmd::Eval(a) => eval(a),
        ModelCmd::Predict(a) => predict(a),
        ModelCmd::Export(a) => export(a),
    }
}

/// What a scenario or a member record says about a model.
struct Names {
    schema: Schema,
    training: serde_json::Value,
    provenance: Provenance,
    report_hash: Option<B256>,
}

fn load_model(path: &Path) -> Result<LoadedModel, Failure> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| input_err(format!("{shown}: {e}")))?;
    if bytes.starts_with(b"SRMODEL1") {
        return Err(input_err(format!(
            "{shown}: a sealed model: open it first (sealroom owner open-model {shown} --key OWNER.json --out model.bin)"
        )));
    }
    LoadedModel::from_bytes(&bytes)
        .map_err(|e| input_err(format!("{shown}: not a usable sealroom model: {e}")))
}

fn names(args: &NamesArgs, model: &LoadedModel) -> Result<Option<Names>, Failure> {
    if let Some(path) = &args.scenario {
        let s = Scenario::load_without_datasets(path).map_err(input_err)?;
        model
            .check_spec(&s.model, &s.schema)
            .map_err(|e| input_err(format!("--scenario {}: {e}", path.display())))?;
        let training = serde_json::to_value(&s.training).map_err(runtime_err)?;
        return Ok(Some(Names {
            schema: s.schema,
            training,
            provenance: Provenance {
                names_from: Some("scenario".into()),
                file: Some(path.display().to_string()),
                ..Provenance::default()
            },
            report_hash: None,
        }));
    }
    let Some(path) = &args.record else {
        return Ok(None);
    };
    let want = B256::from(model.sha256());
    let (file, rec) = if path.is_dir() {
        find_record(path, want)?
    } else {
        let rec = read_record(path)?;
        match &rec.model {
            Some(m) if m.model_sha256 == want => {}
            Some(m) => {
                return Err(input_err(format!(
                    "--record {}: the owner accepted model sha256 {:#x}, this model is {want:#x}",
                    path.display(),
                    m.model_sha256
                )))
            }
            None => {
                return Err(input_err(format!(
                    "--record {}: model: no accepted model in this record (owner fetch-model records one)",
                    path.display()
                )))
            }
        }
        (path.clone(), rec)
    };
    let shown = file.display().to_string();
    let m = &rec.manifest.header;
    model
        .check_spec(&m.model, &m.schema)
        .map_err(|e| input_err(format!("--record {shown}: manifest: {e}")))?;
    let training = serde_json::to_value(&m.training).map_err(runtime_err)?;
    let report_hash = rec.model.as_ref().map(|e| e.completed_report_hash);
    Ok(Some(Names {
        schema: m.schema.clone(),
        training,
        provenance: Provenance {
            names_from: Some("member-record".into()),
            file: Some(shown),
            session_id: Some(format!("{:#x}", rec.session_id)),
            manifest_hash: Some(format!("{:#x}", rec.manifest_hash)),
            completed_report_hash: None,
        },
        report_hash,
    }))
}

/// A member record, checked as the member library checks its own: the
/// format, and the manifest hashing to the recorded hash.
fn read_record(path: &Path) -> Result<MemberRecord, Failure> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| input_err(format!("--record {shown}: {e}")))?;
    let rec: MemberRecord = serde_json::from_slice(&text)
        .map_err(|e| input_err(format!("--record {shown}: not a member record: {e}")))?;
    check_record(path, &rec)?;
    Ok(rec)
}

fn check_record(path: &Path, rec: &MemberRecord) -> Result<(), Failure> {
    let shown = path.display();
    if rec.format != RECORD_FORMAT {
        return Err(input_err(format!(
            "--record {shown}: format: unknown format `{}`",
            rec.format
        )));
    }
    if rec.manifest.hash() != rec.manifest_hash {
        return Err(input_err(format!(
            "--record {shown}: manifest: does not hash to manifest_hash (the record was altered)"
        )));
    }
    Ok(())
}

/// The record in `dir` that accepted the model `want`.
fn find_record(dir: &Path, want: B256) -> Result<(PathBuf, MemberRecord), Failure> {
    let shown = dir.display();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| input_err(format!("--record {shown}: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for file in files {
        // Other files may sit beside the records; only a record that
        // accepted this model matters, and that one must be sound.
        let Ok(text) = std::fs::read(&file) else {
            continue;
        };
        let Ok(rec) = serde_json::from_slice::<MemberRecord>(&text) else {
            continue;
        };
        if rec.model.as_ref().is_some_and(|m| m.model_sha256 == want) {
            check_record(&file, &rec)?;
            return Ok((file, rec));
        }
    }
    Err(input_err(format!(
        "--record {shown}: no record in this directory accepted model sha256 {want:#x}"
    )))
}

fn required_names(args: &NamesArgs, model: &LoadedModel) -> Result<Names, Failure> {
    names(args, model)?.ok_or_else(|| {
        input_err(
            "--scenario FILE or --record PATH is needed: the model bytes do not name the feature and label columns",
        )
    })
}

fn read_data(path: &Path, schema: &Schema, label: bool) -> Result<Dataset, Failure> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| input_err(format!("--data {shown}: {e}")))?;
    Dataset::from_csv_columns(&bytes, schema, label)
        .map_err(|e| input_err(format!("--data {shown}: {e}")))
}

fn eval(a: DataArgs) -> CmdResult {
    let model = load_model(&a.model)?;
    let n = required_names(&a.names, &model)?;
    let data = read_data(&a.data, &n.schema, true)?;
    let s = model
        .score(&data)
        .map_err(|e| input_err(format!("--data {}: {e}", a.data.display())))?;
    // The JSON every answer starts with: which model, which data.
    let mut head = serde_json::json!({
        "model": a.model.display().to_string(),
        "model_sha256": hex::encode(model.sha256()),
        "data": a.data.display().to_string(),
        "records": s.records,
    });
    let with = |head: &mut serde_json::Value, rest: serde_json::Value| {
        if let (Some(h), serde_json::Value::Object(r)) = (head.as_object_mut(), rest) {
            h.extend(r);
        }
    };
    if let (Some(r2), Some(rmse), Some(mse)) = (s.r2, s.rmse, s.mse) {
        if a.json {
            with(
                &mut head,
                serde_json::json!({"task": "regression", "r2": r2, "rmse": rmse, "mse": mse}),
            );
            println!("{head}");
        } else {
            println!(
                "R² {r2:.3}, RMSE {rmse:.3} (in {}'s units) on {} records",
                n.schema.label, s.records
            );
        }
        return Ok(());
    }
    let accuracy = s.accuracy.unwrap_or(0.0);
    if a.json {
        with(
            &mut head,
            serde_json::json!({
                "task": "classification",
                "correct": s.correct,
                "accuracy": accuracy,
                "classes": model.arch().classes,
                "confusion_matrix": s.confusion,
                "confusion_axes": "rows: true class, columns: predicted class",
            }),
        );
        println!("{head}");
        return Ok(());
    }
    println!(
        "accuracy {:.3} ({}/{} correct)",
        accuracy, s.correct, s.records
    );
    println!("confusion matrix (rows: true class, columns: predicted class)");
    let width = s
        .confusion
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .chain(std::iter::once(s.confusion.len().to_string().len()))
        .max()
        .unwrap_or(1);
    let header: Vec<String> = (0..s.confusion.len())
        .map(|c| format!("{c:>width$}"))
        .collect();
    println!("{:>width$}  {}", "", header.join(" "));
    for (i, row) in s.confusion.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>width$}")).collect();
        println!("{i:>width$}  {}", cells.join(" "));
    }
    Ok(())
}

fn predict(a: DataArgs) -> CmdResult {
    let model = load_model(&a.model)?;
    let n = required_names(&a.names, &model)?;
    let data = read_data(&a.data, &n.schema, false)?;
    let p = model
        .predict(&data)
        .map_err(|e| input_err(format!("--data {}: {e}", a.data.display())))?;
    if !p.values.is_empty() {
        // A regressor: one value per row, in the label column's units.
        if a.json {
            let rows: Vec<serde_json::Value> = p
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| serde_json::json!({ "row": i + 1, "value": f64::from(*v) }))
                .collect();
            let v = serde_json::json!({
                "model": a.model.display().to_string(),
                "model_sha256": hex::encode(model.sha256()),
                "data": a.data.display().to_string(),
                "task": "regression",
                "records": p.values.len(),
                "predictions": rows,
            });
            return emit(&format!("{v}\n"));
        }
        let mut text = format!("row,{}\n", n.schema.label);
        for (i, v) in p.values.iter().enumerate() {
            text.push_str(&format!("{},{v}\n", i + 1));
        }
        return emit(&text);
    }
    if a.json {
        let rows: Vec<serde_json::Value> = p
            .predicted
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let probs: Vec<f64> = p.row(i).iter().map(|v| f64::from(*v)).collect();
                serde_json::json!({ "row": i + 1, "class": c, "probabilities": probs })
            })
            .collect();
        let v = serde_json::json!({
            "model": a.model.display().to_string(),
            "model_sha256": hex::encode(model.sha256()),
            "data": a.data.display().to_string(),
            "classes": p.classes,
            "records": p.predicted.len(),
            "predictions": rows,
        });
        return emit(&format!("{v}\n"));
    }
    // CSV: readable, and the next program's input as it is.
    let header: Vec<String> = (0..p.classes).map(|c| format!("p{c}")).collect();
    let mut text = format!("row,class,{}\n", header.join(","));
    for (i, c) in p.predicted.iter().enumerate() {
        let probs: Vec<String> = p.row(i).iter().map(|v| format!("{v:.6}")).collect();
        text.push_str(&format!("{},{c},{}\n", i + 1, probs.join(",")));
    }
    emit(&text)
}

/// Prints `text`; a reader that stops early (`| head`) is not an error.
fn emit(text: &str) -> CmdResult {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(runtime_err(format!("stdout: {e}"))),
    }
}

fn export(a: ExportArgs) -> CmdResult {
    let model = load_model(&a.model)?;
    let names = names(&a.names, &model)?;
    let flag_hash = a
        .report_hash
        .as_deref()
        .map(|h| {
            h.parse::<B256>()
                .map_err(|_| input_err(format!("--report-hash {h}: not a 32-byte hex hash")))
        })
        .transpose()?;
    let record_hash = names.as_ref().and_then(|n| n.report_hash);
    let report_hash = match (flag_hash, record_hash) {
        (Some(f), Some(r)) if f != r => {
            return Err(input_err(format!(
                "--report-hash {f:#x}: the record's completed report is {r:#x}"
            )))
        }
        (f, r) => f.or(r),
    };
    if a.out.exists() && !a.out.is_dir() {
        return Err(input_err(format!(
            "--out {}: exists and is not a directory",
            a.out.display()
        )));
    }

    // Everything is computed before anything is written.
    let tensors = model.tensors().map_err(runtime_err)?;
    let meta = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "sealroom.model_sha256".to_string(),
            hex::encode(model.sha256()),
        ),
        ("sealroom.card".to_string(), CARD_FILE.to_string()),
    ]);
    let weights = safetensors_bytes(&tensors, meta).map_err(runtime_err)?;
    let weights_sha = sha256(&weights);
    let mut card = model.card(WEIGHTS_FILE, weights_sha);
    if let Some(n) = names {
        card.features = Some(n.schema.features.clone());
        card.feature_type = Some(n.schema.feature_type);
        card.label = Some(n.schema.label.clone());
        card.training = Some(n.training);
        card.provenance = n.provenance;
    }
    card.provenance.completed_report_hash = report_hash.map(|h| format!("{h:#x}"));
    let card_text = serde_json::to_string_pretty(&card).map_err(runtime_err)? + "\n";

    // Both files are written in full beside their places (temporary file,
    // fsync) before either is renamed in, weights first; a target that is a
    // directory, or an input, is refused before anything is written. The
    // card names the weights' SHA-256, so a pair torn by a crash between
    // the two renames shows.
    let weights_path = a.out.join(WEIGHTS_FILE);
    let card_path = a.out.join(CARD_FILE);
    crate::exit::distinct_files(&[
        ("MODEL", Some(&a.model)),
        ("--scenario", a.names.scenario.as_deref()),
        ("--record", a.names.record.as_deref()),
        ("--out's model.safetensors", Some(&weights_path)),
        ("--out's model-card.json", Some(&card_path)),
    ])?;
    for path in [&weights_path, &card_path] {
        if path.is_dir() {
            return Err(input_err(format!(
                "--out {}: {} is a directory",
                a.out.display(),
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(&a.out)
        .map_err(|e| input_err(format!("--out {}: {e}", a.out.display())))?;
    let mut staged = Vec::with_capacity(2);
    for (path, bytes) in [
        (&weights_path, &weights[..]),
        (&card_path, card_text.as_bytes()),
    ] {
        let write_err = |e: std::io::Error| input_err(format!("--out {}: {e}", path.display()));
        let mut file = AtomicFile::create(path, true).map_err(write_err)?;
        std::io::Write::write_all(&mut file, bytes).map_err(write_err)?;
        staged.push((path, file));
    }
    for (path, file) in staged {
        file.commit()
            .map_err(|e| runtime_err(format!("--out {}: {e}", path.display())))?;
    }
    let arch = model.arch();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "out": a.out.display().to_string(),
                "weights": weights_path.display().to_string(),
                "card": card_path.display().to_string(),
                "weights_sha256": hex::encode(weights_sha),
                "model_sha256": hex::encode(model.sha256()),
                "architecture": card.architecture,
                "tensors": tensors.iter().map(|t| serde_json::json!({"name": t.name, "shape": t.shape})).collect::<Vec<_>>(),
                "features_known": card.features.is_some(),
                "completed_report_hash": card.provenance.completed_report_hash,
            })
        );
    } else {
        println!(
            "exported {arch} to {}: {WEIGHTS_FILE} ({} bytes, sha256 {}), {CARD_FILE}",
            a.out.display(),
            weights.len(),
            hex::encode(weights_sha)
        );
        for t in &tensors {
            println!("  {} {:?}", t.name, t.shape);
        }
        if card.features.is_none() {
            println!(
                "  feature names unknown (give --scenario or --record to put them in the card)"
            );
        }
    }
    Ok(())
}
