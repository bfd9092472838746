//! Reading and writing 2-D float32 `.npy` files, the form Python users keep embeddings in.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use npyz::WriterBuilder;

/// What can go wrong with a `.npy` file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The array is not a 2-D float matrix.
    #[error("{path}: expected a 2-D float32 array (rows × dim), found dtype {dtype} with shape {shape:?}; in numpy: np.save(path, x.astype(np.float32).reshape(len(x), -1))")]
    Shape {
        /// The file involved.
        path: PathBuf,
        /// The stored type.
        dtype: String,
        /// The shape found.
        shape: Vec<u64>,
    },
}

/// A row-major matrix read from or written to `.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Components per row.
    pub dim: usize,
    /// `rows * dim` values, row-major.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Reads a 2-D float32 (or float64, converted) C-order array.
pub fn read_matrix(path: impl AsRef<Path>) -> Result<Matrix, NpyError> {
    let path = path.as_ref();
    let io = |source| NpyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let npy = npyz::NpyFile::new(BufReader::with_capacity(1 << 20, file)).map_err(io)?;
    let shape = npy.shape().to_vec();
    // descr() renders a Python literal ('<f4'); compare the type string itself.
    let dtype = npy.dtype().descr().trim_matches('\'').to_owned();
    let bad_shape = || NpyError::Shape {
        path: path.to_owned(),
        dtype: dtype.clone(),
        shape: shape.clone(),
    };
    if shape.len() != 2 || shape[1] == 0 || npy.order() != npyz::Order::C {
        return Err(bad_shape());
    }
    let data: Vec<f32> = match dtype.as_str() {
        "<f4" => npy.into_vec::<f32>().map_err(io)?,
        "<f8" => npy
            .into_vec::<f64>()
            .map_err(io)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        _ => return Err(bad_shape()),
    };
    Ok(Matrix {
        rows: shape[0] as usize,
        dim: shape[1] as usize,
        data,
    })
}

/// Writes a `rows × dim` float32 C-order array.
pub fn write_matrix(path: impl AsRef<Path>, dim: usize, data: &[f32]) -> Result<(), NpyError> {
    let path = path.as_ref();
    let io = |source| NpyError::Io {
        path: path.to_owned(),
        source,
    };
    let rows = if dim == 0 { 0 } else { data.len() / dim };
    let file = File::create(path).map_err(io)?;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[rows as u64, dim as u64])
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    writer.extend(data.iter().copied()).map_err(io)?;
    writer.finish().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clear_error_for_wrong_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        write_matrix(&path, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let m = read_matrix(&path).unwrap();
        assert_eq!((m.rows, m.dim), (2, 3));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);

        let path1d = dir.path().join("y.npy");
        npyz::to_file_1d(&path1d, vec![1.0f32, 2.0]).unwrap();
        let err = read_matrix(&path1d).unwrap_err().to_string();
        assert!(err.contains("expected a 2-D float32 array"), "{err}");
    }
}
