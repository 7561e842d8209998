//! The Rust types that tensors store, and what kernels need to know of them.

use super::{Buffer, DType};

/// A Rust type that a tensor can store.
pub trait Element:
    Copy + Send + Sync + PartialOrd + PartialEq + Default + std::fmt::Debug + 'static
{
    const DTYPE: DType;
    fn wrap(data: Vec<Self>) -> Buffer;
    fn slice(buf: &Buffer) -> Option<&[Self]>;
    fn slice_mut(buf: &mut Buffer) -> Option<&mut Vec<Self>>;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

macro_rules! element {
    ($t:ty, $variant:ident, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(data: Vec<Self>) -> Buffer {
                Buffer::$variant(data)
            }
            fn slice(buf: &Buffer) -> Option<&[Self]> {
                match buf {
                    Buffer::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(buf: &mut Buffer) -> Option<&mut Vec<Self>> {
                match buf {
                    Buffer::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                let f: fn($t) -> f64 = $to;
                f(self)
            }
            fn from_f64(v: f64) -> Self {
                let f: fn(f64) -> $t = $from;
                f(v)
            }
        }
    };
}

element!(f32, F32, |x| x as f64, |v| v as f32);
element!(f64, F64, |x| x, |v| v);
element!(i32, I32, |x| x as f64, |v| v as i32);
element!(i64, I64, |x| x as f64, |v| v as i64);
element!(u8, U8, |x| x as f64, |v| v as u8);
element!(bool, Bool, |x| x as u8 as f64, |v| v != 0.0);

/// A floating-point element: what the math kernels are generic over.
pub trait Float: Element + num_traits::Float + std::iter::Sum {}
impl Float for f32 {}
impl Float for f64 {}
