//! CSV files: one example per line, one label column, every other column a feature (`f32`).

use super::{Dataset, Features, io_cause};
use crate::Error;
use crate::budget::{self, Budget};
use std::path::Path;

/// How a CSV file is laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvFormat {
    /// Column (0-based) holding the class index.
    pub label_col: usize,
    /// Skip the first line.
    pub header: bool,
    /// Feature values are divided by this (255 for pixel bytes, 1 for data already in `[0, 1]`).
    pub scale: f32,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat { label_col: 0, header: false, scale: 255.0 }
    }
}

/// Reads a CSV file: one example per line, one label column, every other column a feature.
/// No memory budget; see [`read_csv_within`].
pub fn read_csv(path: &Path, fmt: &CsvFormat) -> Result<Dataset, Error> {
    read_csv_within(path, fmt, &mut Budget::unlimited())
}

/// [`read_csv`], charging the text (its size on disk) and then the values it holds to `budget`
/// before each is allocated.
pub fn read_csv_within(path: &Path, fmt: &CsvFormat, budget: &mut Budget) -> Result<Dataset, Error> {
    let src = path.display().to_string();
    let len = std::fs::metadata(path).map_err(|e| Error::data(&src, io_cause(&e)))?.len();
    budget.charge(&format!("{len} bytes of text"), Some(len)).map_err(|e| Error::data(&src, e.0))?;
    let bytes = budget::read_at_most(path, len).map_err(|e| Error::data(&src, io_cause(&e)))?;
    let text =
        String::from_utf8(bytes).map_err(|_| Error::data(&src, "stream did not contain valid UTF-8"))?;
    let d = parse_csv_within(&text, fmt, budget).map_err(|c| Error::data(&src, c));
    budget.release(len);
    d
}

/// Parses CSV text (see [`read_csv`]); the error is the cause, with line and column.
pub fn parse_csv(text: &str, fmt: &CsvFormat) -> Result<Dataset, String> {
    parse_csv_within(text, fmt, &mut Budget::unlimited())
}

/// [`parse_csv`], charging the values (at most one row per line, as wide as the first row) to
/// `budget` before they are allocated.
pub fn parse_csv_within(text: &str, fmt: &CsvFormat, budget: &mut Budget) -> Result<Dataset, String> {
    if !(fmt.scale.is_finite() && fmt.scale > 0.0) {
        return Err(format!("scale {} must be a positive number", fmt.scale));
    }
    let data_lines =
        || text.lines().enumerate().filter(|(i, l)| !((fmt.header && *i == 0) || l.trim().is_empty()));
    let rows = data_lines().count();
    let first_width = data_lines().next().map_or(0, |(_, l)| l.split(',').count());
    // Every row has the first row's width or is refused, so this is all the values can take.
    let values = rows.checked_mul(first_width.saturating_sub(1));
    let need = budget::sum(&[values.and_then(budget::of::<f32>), budget::of::<u32>(rows)]);
    budget.charge(&format!("{rows} rows of {first_width} fields"), need).map_err(|e| e.0)?;
    let mut width = None;
    let (mut x, mut y) = (Vec::with_capacity(values.unwrap_or(0)), Vec::with_capacity(rows));
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if (fmt.header && i == 0) || line.trim().is_empty() {
            continue;
        }
        let nfields = line.split(',').count();
        let w = *width.get_or_insert(nfields);
        if nfields != w {
            return Err(format!("line {lineno} has {nfields} fields, expected {w} like the first row"));
        }
        if fmt.label_col >= w {
            return Err(format!("label column {} does not exist (rows have {w} fields)", fmt.label_col));
        }
        for (c, f) in line.split(',').map(str::trim).enumerate() {
            if c == fmt.label_col {
                let l: u32 = f.parse().map_err(|_| {
                    format!("line {lineno}, column {}: label {f:?} is not a non-negative integer", c + 1)
                })?;
                y.push(l);
            } else {
                let v: f32 = f
                    .parse()
                    .ok()
                    .filter(|v: &f32| v.is_finite())
                    .ok_or_else(|| format!("line {lineno}, column {}: {f:?} is not a number", c + 1))?;
                // A finite value can still overflow once scaled (1e30 / 1e-30): refuse it here
                // rather than train on infinity.
                let v = Some(v / fmt.scale).filter(|v| v.is_finite()).ok_or_else(|| {
                    format!(
                        "line {lineno}, column {}: {f:?} divided by the scale {} is not finite",
                        c + 1,
                        fmt.scale
                    )
                })?;
                x.push(v);
            }
        }
    }
    let w = width.ok_or_else(|| "no data rows".to_string())?;
    if w < 2 {
        return Err("rows need a label and at least one feature".into());
    }
    Ok(Dataset { source: String::new(), features: w - 1, x: Features::Floats(x), y })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parsing() {
        let f = CsvFormat { label_col: 2, header: true, scale: 10.0 };
        let d = parse_csv("a,b,label\n1,2,3\n\n4, 5 ,6\n", &f).unwrap();
        assert_eq!((d.len(), d.features), (2, 2));
        assert_eq!(d.y, vec![3, 6]);
        assert_eq!(d.x, Features::Floats(vec![0.1, 0.2, 0.4, 0.5]));
        let e = parse_csv("1,2\n3,4,5\n", &CsvFormat::default()).unwrap_err();
        assert_eq!(e, "line 2 has 3 fields, expected 2 like the first row");
        let e = parse_csv("1,2\n3,x\n", &CsvFormat::default()).unwrap_err();
        assert_eq!(e, "line 2, column 2: \"x\" is not a number");
        let e = parse_csv("1.5,2\n", &CsvFormat::default()).unwrap_err();
        assert!(e.contains("label \"1.5\""), "{e}");
    }
}
