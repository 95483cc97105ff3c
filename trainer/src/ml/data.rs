//! Parsed numeric datasets.

use std::fmt;

use sealroom_protocol::dataset::split_fields;
use sealroom_protocol::scenario::{FeatureType, Schema, Task};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::MlError;

/// Parsed numeric data, row-major. Zeroized on drop: inside the TEE this is
/// plaintext patient data.
///
/// `Debug` prints the shape only, never values.
#[derive(Clone, Default, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct Dataset {
    /// `n × d` feature values, row-major, in the schema's feature order.
    pub features: Vec<f32>,
    /// `n` class labels in `0..schema.label_classes` (classification;
    /// empty for regression).
    pub labels: Vec<u32>,
    /// `n` target values (regression; empty for classification).
    pub targets: Vec<f32>,
    /// Number of records.
    pub n: usize,
    /// Number of features per record.
    pub d: usize,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("n", &self.n)
            .field("d", &self.d)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// Parses one party's CSV bytes: a header line of column names (in any
    /// order; exactly the schema's features plus its label), then one record
    /// per line. Blank lines are skipped, `\r\n` is accepted, quoting is not
    /// (the same rules as the dataset commitment in `sealroom-protocol`, so
    /// what was committed is what is parsed). Features are reordered into the
    /// schema's order. Errors name the line and the column.
    pub fn from_csv(bytes: &[u8], schema: &Schema) -> Result<Self, MlError> {
        Self::parse(bytes, schema, Columns::Exact)
    }

    /// Parses a CSV to apply a model to, outside the node (`sealroom model
    /// eval|predict`): the header must name every schema feature (in any
    /// order) and, when `label` is true, the label; other columns are
    /// ignored (an id column, or the label when predicting). When `label`
    /// is false the label column is not read and `labels` is empty. Values
    /// are read exactly as [`Dataset::from_csv`] reads them, so a row gives
    /// the model the same numbers it would have had inside the node.
    pub fn from_csv_columns(bytes: &[u8], schema: &Schema, label: bool) -> Result<Self, MlError> {
        Self::parse(bytes, schema, Columns::Contains { label })
    }

    fn parse(bytes: &[u8], schema: &Schema, columns: Columns) -> Result<Self, MlError> {
        let d = schema.features.len();
        let (exact, want_label) = match columns {
            Columns::Exact => (true, true),
            Columns::Contains { label } => (false, label),
        };
        let mut lines = bytes.split(|b| *b == b'\n').enumerate();
        // `split` yields at least one (possibly empty) slice.
        let header = match lines.next() {
            Some((_, l)) if !trim_cr(l).iter().all(u8::is_ascii_whitespace) => l,
            _ => {
                return Err(csv_err(
                    1,
                    None,
                    "empty header line (a header of column names is needed)",
                ))
            }
        };
        let header = std::str::from_utf8(trim_cr(header))
            .map_err(|_| csv_err(1, None, "header is not UTF-8"))?;
        let names = split_fields(header).map_err(|m| csv_err(1, None, &m))?;
        let width = names.len();
        // Column `i` of the file goes to feature slot `slot[i]` (d = the
        // label, `IGNORED` = not read).
        const IGNORED: usize = usize::MAX;
        let mut slot = vec![IGNORED; width];
        let mut seen = vec![false; d + 1];
        for (i, name) in names.iter().enumerate() {
            let s = if *name == schema.label {
                if !want_label {
                    continue;
                }
                d
            } else {
                match schema.features.iter().position(|f| f == name) {
                    Some(s) => s,
                    None if exact => {
                        return Err(csv_err(1, Some(name), "column is not in the schema"))
                    }
                    None => continue,
                }
            };
            if seen[s] {
                return Err(csv_err(1, Some(name), "column appears twice"));
            }
            seen[s] = true;
            slot[i] = s;
        }
        if !want_label {
            seen[d] = true;
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            let name = schema.features.get(missing).unwrap_or(&schema.label);
            return Err(csv_err(1, Some(name), "column is missing"));
        }

        let regression = schema.task == Task::Regression;
        let mut out = Dataset {
            features: Vec::new(),
            labels: Vec::new(),
            targets: Vec::new(),
            n: 0,
            d,
        };
        let mut row = vec![0f32; d];
        for (idx, raw) in lines {
            let line_no = idx + 1;
            let raw = trim_cr(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let text = std::str::from_utf8(raw).map_err(|_| csv_err(line_no, None, "not UTF-8"))?;
            let fields = split_fields(text).map_err(|m| csv_err(line_no, None, &m))?;
            if fields.len() != width {
                return Err(csv_err(
                    line_no,
                    None,
                    &format!("{} fields, the header has {width}", fields.len()),
                ));
            }
            let mut label = 0u32;
            let mut target = 0f32;
            for (i, v) in fields.iter().enumerate() {
                let s = slot[i];
                if s == IGNORED {
                    continue;
                }
                if s == d && regression {
                    target = parse_feature(v, FeatureType::Float).ok_or_else(|| {
                        csv_err(
                            line_no,
                            Some(names[i]),
                            "regression target is not a finite number",
                        )
                    })?;
                } else if s == d {
                    label = match v.parse::<u32>() {
                        Ok(c) if c < schema.label_classes => c,
                        _ => {
                            return Err(csv_err(
                                line_no,
                                Some(names[i]),
                                &format!("label is not a class in 0..{}", schema.label_classes),
                            ))
                        }
                    };
                } else {
                    row[s] = parse_feature(v, schema.feature_type).ok_or_else(|| {
                        csv_err(
                            line_no,
                            Some(names[i]),
                            &format!("not a {} value", type_name(schema.feature_type)),
                        )
                    })?;
                }
            }
            out.features.extend_from_slice(&row);
            match (want_label, regression) {
                (true, true) => out.targets.push(target),
                (true, false) => out.labels.push(label),
                (false, _) => {}
            }
            out.n += 1;
        }
        row.zeroize();
        if out.n == 0 {
            return Err(MlError::Empty("dataset"));
        }
        Ok(out)
    }

    /// Pools datasets, in the order given (the loader passes the manifest's
    /// party order; the data-order commitment indexes rows of this pool).
    pub fn concat(parts: &[&Dataset]) -> Result<Self, MlError> {
        let first = parts.first().ok_or(MlError::Empty("pool of datasets"))?;
        let d = first.d;
        let mut out = Dataset {
            features: Vec::new(),
            labels: Vec::new(),
            targets: Vec::new(),
            n: 0,
            d,
        };
        let n: usize = parts.iter().map(|p| p.n).sum();
        out.features.reserve_exact(n * d);
        out.labels.reserve_exact(n);
        for p in parts {
            if p.d != d {
                return Err(MlError::FeatureCount {
                    expected: d,
                    found: p.d,
                });
            }
            out.features.extend_from_slice(&p.features);
            out.labels.extend_from_slice(&p.labels);
            out.targets.extend_from_slice(&p.targets);
            out.n += p.n;
        }
        if out.n == 0 {
            return Err(MlError::Empty("pool of datasets"));
        }
        Ok(out)
    }

    /// The rows at `indices`, in that order.
    pub(crate) fn select(&self, indices: &[u32]) -> Self {
        let mut out = Dataset {
            features: Vec::with_capacity(indices.len() * self.d),
            labels: Vec::new(),
            targets: Vec::new(),
            n: indices.len(),
            d: self.d,
        };
        for &i in indices {
            let i = i as usize;
            out.features
                .extend_from_slice(&self.features[i * self.d..(i + 1) * self.d]);
            if let Some(l) = self.labels.get(i) {
                out.labels.push(*l);
            }
            if let Some(t) = self.targets.get(i) {
                out.targets.push(*t);
            }
        }
        out
    }

    /// Checks internal consistency (the fields are public, so a caller may
    /// have built an inconsistent value by hand).
    /// `classes` is the class count of a classifier, or `None` for a
    /// regression (then `targets`, not `labels`, holds one value per record).
    pub(crate) fn check(
        &self,
        what: &'static str,
        d: usize,
        classes: Option<u32>,
    ) -> Result<(), MlError> {
        if self.n == 0 {
            return Err(MlError::Empty(what));
        }
        if self.d != d {
            return Err(MlError::FeatureCount {
                expected: d,
                found: self.d,
            });
        }
        let (labels, targets) = match classes {
            Some(_) => (self.n, 0),
            None => (0, self.n),
        };
        if self.features.len() != self.n * self.d
            || self.labels.len() != labels
            || self.targets.len() != targets
        {
            return Err(MlError::Spec {
                field: "dataset",
                message: format!(
                    "{what}: buffer lengths do not match n = {} and d = {}",
                    self.n, self.d
                ),
            });
        }
        if let Some(classes) = classes.filter(|c| self.labels.iter().any(|l| l >= c)) {
            return Err(MlError::Spec {
                field: "schema.label_classes",
                message: format!("{what} has a label outside 0..{classes}"),
            });
        }
        if self.targets.iter().any(|v| !v.is_finite()) {
            return Err(MlError::Spec {
                field: "dataset",
                message: format!("{what} has a non-finite target value"),
            });
        }
        if self.features.iter().any(|v| !v.is_finite()) {
            return Err(MlError::Spec {
                field: "dataset",
                message: format!("{what} has a non-finite feature value"),
            });
        }
        Ok(())
    }
}

/// How [`Dataset::parse`] matches a header against the schema.
#[derive(Clone, Copy)]
enum Columns {
    /// Exactly the features and the label: committed data is parsed as it
    /// was committed, nothing else in it.
    Exact,
    /// Every feature, the label when `label`; other columns are skipped.
    Contains { label: bool },
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_feature(v: &str, ty: FeatureType) -> Option<f32> {
    let x = match ty {
        FeatureType::Float => v.parse::<f64>().ok().filter(|x| x.is_finite())?,
        FeatureType::Integer => v.parse::<i64>().ok()? as f64,
    };
    let x = x as f32;
    x.is_finite().then_some(x)
}

fn type_name(ty: FeatureType) -> &'static str {
    match ty {
        FeatureType::Float => "finite decimal",
        FeatureType::Integer => "integer",
    }
}

fn csv_err(line: usize, column: Option<&str>, message: &str) -> MlError {
    MlError::Csv {
        line,
        column: column.map(str::to_string),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealroom_protocol::scenario::Preprocessing;

    fn schema() -> Schema {
        Schema {
            features: vec!["a".into(), "b".into()],
            label: "y".into(),
            task: Task::Classification,
            label_classes: 3,
            standardize_target: true,
            feature_type: FeatureType::Float,
            preprocessing: Preprocessing::Standardize,
        }
    }

    #[test]
    fn columns_in_any_order_are_reordered() {
        let ds = Dataset::from_csv(b"y,b,a\r\n2,1.5,-3\n\n0,0,7\n", &schema()).unwrap();
        assert_eq!((ds.n, ds.d), (2, 2));
        assert_eq!(ds.features, vec![-3.0, 1.5, 7.0, 0.0]);
        assert_eq!(ds.labels, vec![2, 0]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = Dataset::from_csv(b"a,b,y\n1,2,0\n1,x,0\n", &schema()).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 3, column: Some(c), .. } if c == "b"),
            "{e}"
        );
        let e = Dataset::from_csv(b"a,b,y\n1,2,3\n", &schema()).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 2, column: Some(c), .. } if c == "y"),
            "{e}"
        );
        let e = Dataset::from_csv(b"a,b,y\n1,2\n", &schema()).unwrap_err();
        assert!(matches!(
            e,
            MlError::Csv {
                line: 2,
                column: None,
                ..
            }
        ));
        let e = Dataset::from_csv(b"a,y\n1,2\n", &schema()).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 1, column: Some(c), .. } if c == "b"),
            "{e}"
        );
        let e = Dataset::from_csv(b"a,b,c,y\n", &schema()).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 1, column: Some(c), .. } if c == "c"),
            "{e}"
        );
        let e = Dataset::from_csv(b"a,b,y\n1,inf,0\n", &schema()).unwrap_err();
        assert!(matches!(e, MlError::Csv { line: 2, .. }));
        assert!(matches!(
            Dataset::from_csv(b"a,b,y\n", &schema()),
            Err(MlError::Empty(_))
        ));
        assert!(matches!(
            Dataset::from_csv(b"", &schema()),
            Err(MlError::Csv { line: 1, .. })
        ));
    }

    #[test]
    fn columns_for_a_model_ignore_extra_columns_and_may_lack_the_label() {
        let ds = Dataset::from_csv_columns(b"id,b,y,a\nx1,1.5,2,-3\n", &schema(), true).unwrap();
        assert_eq!(ds.features, vec![-3.0, 1.5]);
        assert_eq!(ds.labels, vec![2]);
        let ds = Dataset::from_csv_columns(b"b,a,id\n1.5,-3,q\n2,4,r\n", &schema(), false).unwrap();
        assert_eq!((ds.n, ds.features.len(), ds.labels.len()), (2, 4, 0));
        // The label column is not read when predicting (any value passes).
        let ds = Dataset::from_csv_columns(b"a,b,y\n1,2,nine\n", &schema(), false).unwrap();
        assert_eq!(ds.n, 1);
        let e = Dataset::from_csv_columns(b"a,y\n1,2\n", &schema(), true).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 1, column: Some(c), .. } if c == "b"),
            "{e}"
        );
        let e = Dataset::from_csv_columns(b"a,b\n1,2\n", &schema(), true).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 1, column: Some(c), .. } if c == "y"),
            "{e}"
        );
        let e = Dataset::from_csv_columns(b"a,b,id\n1,x,3\n", &schema(), false).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 2, column: Some(c), .. } if c == "b"),
            "{e}"
        );
    }

    #[test]
    fn a_regression_target_is_a_number() {
        let reg = Schema {
            task: Task::Regression,
            label_classes: 0,
            ..schema()
        };
        let ds = Dataset::from_csv(b"y,b,a\n151.5,1,2\n-3e2,3,4\n", &reg).unwrap();
        assert_eq!(ds.targets, vec![151.5, -300.0]);
        assert!(ds.labels.is_empty());
        ds.check("t", 2, None).unwrap();
        assert!(ds.check("t", 2, Some(3)).is_err());
        assert_eq!(ds.select(&[1]).targets, vec![-300.0]);
        let e = Dataset::from_csv(b"a,b,y\n1,2,NaN\n", &reg).unwrap_err();
        assert!(
            matches!(&e, MlError::Csv { line: 2, column: Some(c), .. } if c == "y"),
            "{e}"
        );
    }

    #[test]
    fn concat_pools_in_order() {
        let a = Dataset::from_csv(b"a,b,y\n1,2,0\n", &schema()).unwrap();
        let b = Dataset::from_csv(b"a,b,y\n3,4,1\n5,6,2\n", &schema()).unwrap();
        let p = Dataset::concat(&[&a, &b]).unwrap();
        assert_eq!(p.n, 3);
        assert_eq!(p.features, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(p.labels, vec![0, 1, 2]);
        assert!(format!("{p:?}").contains("n: 3"));
        let odd = Dataset {
            features: vec![1.0],
            labels: vec![0],
            targets: vec![],
            n: 1,
            d: 1,
        };
        assert!(matches!(
            Dataset::concat(&[&a, &odd]),
            Err(MlError::FeatureCount {
                expected: 2,
                found: 1
            })
        ));
    }
}
