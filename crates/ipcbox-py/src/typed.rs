//! Shared values and arrays: the segment is created here, in the layout Rust's `shm::Value`
//! and `shm::Array` use, and mapped by the Python layer, which puts a ctypes object on it.

use ipcbox::shm::TypedOptions;
use pyo3::prelude::*;

use crate::error;

/// Creates the typed segment `name` (exclusively, zeroed): a value when `value` is true, else
/// an array of `length` elements of type `element` (`u8`..`u64`, `i8`..`i64`, `f32`, `f64`,
/// `bool`). The name stays: the Python object that asked removes it.
#[pyfunction]
pub(crate) fn create_typed(name: &str, element: &str, length: usize, value: bool) -> PyResult<()> {
    let options = TypedOptions::new();
    macro_rules! make {
        ($t:ty, $zero:expr) => {{
            if value {
                let mut v = options.open_value::<$t>(name, $zero).map_err(error::os)?;
                v.detach();
            } else {
                let mut a = options.open_array::<$t>(name, length).map_err(error::os)?;
                a.detach();
            }
        }};
    }
    match element {
        "u8" => make!(u8, 0),
        "i8" => make!(i8, 0),
        "u16" => make!(u16, 0),
        "i16" => make!(i16, 0),
        "u32" => make!(u32, 0),
        "i32" => make!(i32, 0),
        "u64" => make!(u64, 0),
        "i64" => make!(i64, 0),
        "f32" => make!(f32, 0.0),
        "f64" => make!(f64, 0.0),
        "bool" => make!(bool, false),
        other => {
            return Err(error::value(format!(
                "element type must be one of u8..u64, i8..i64, f32, f64, bool, not {other:?}"
            )))
        }
    }
    Ok(())
}
