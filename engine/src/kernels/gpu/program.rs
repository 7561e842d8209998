//! Whole GPU programs from the kernel description, in either language ([`Dialect`]): a map
//! (one thread per output element, each input read through a [`View`] of offsets and strides,
//! the value an [`Expr`]), a reduction over axes, an argmax, and a sum of rows by segment. Everything the GPU kernels of the engine
//! run, besides the matrix product, is one of these or a chain of them, so both languages get
//! every kernel from this one file.
//!
//! Bindings and parameters are the same in both languages: the inputs in order, the output,
//! then a word array of parameters. A program reads its element index as
//! `(group.y * groups.x + group.x) * WORKGROUP_SIZE + thread`.

use super::expr::{helpers, is_nan, literal, Dialect, Expr, Scalar};
use crate::devices::gpu::WORKGROUP_SIZE;
use crate::devices::GpuProgram;
use crate::ops::ReduceKind;
use std::fmt::Write;

/// The name of every CUDA kernel's entry point.
pub use crate::devices::CUDA_ENTRY;

/// How a map's input is read: element `offset + sum(coord[a] * strides[a])` for the output
/// element at `coord`. Broadcasting is a zero stride, a transpose permuted strides, a slice
/// an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// May be negative when every element read lies past it (a padded window).
    pub offset: i64,
    pub strides: Vec<usize>,
}

impl View {
    /// The view of an input a map reads only by index ([`Expr::Load`]).
    pub fn unread(rank: usize) -> View {
        View {
            offset: 0,
            strides: vec![0; rank],
        }
    }
}

/// A map program: `out[i] = expr(inputs read at i's coordinates)`. Strided maps (and maps
/// reading coordinates) are generated for their rank, the shape and views coming as
/// parameters; plain ones read every input at `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct MapProgram {
    pub expr: Expr,
    pub inputs: Vec<Scalar>,
    /// `None`: every input is read at the output's own index.
    pub rank: Option<usize>,
}

impl MapProgram {
    /// The output's scalar type.
    pub fn output(&self) -> Result<Scalar, String> {
        self.expr.scalar(&self.inputs)
    }

    /// The parameter words: `[len]`, then for a strided map the shape and each input's offset
    /// and strides, then for a map that loads the inputs' lengths (`lens`).
    pub fn params(
        &self,
        shape: &[usize],
        views: &[View],
        lens: &[usize],
    ) -> Result<Vec<u32>, String> {
        let mut words = vec![word(shape.iter().product())?];
        if self.rank.is_some() {
            for &d in shape {
                words.push(word(d)?);
            }
            for view in views {
                // Negative offsets wrap: the index arithmetic wraps alike in both languages.
                words.push(view.offset as u32);
                for &s in &view.strides {
                    words.push(word(s)?);
                }
            }
        }
        if self.expr.loads() {
            for &len in lens {
                words.push(word(len.max(1))?);
            }
        }
        Ok(words)
    }

    /// Where the inputs' lengths start in the parameters.
    fn lens_at(&self) -> usize {
        match self.rank {
            None => 1,
            Some(rank) => 1 + rank + self.inputs.len() * (rank + 1),
        }
    }

    fn map_source(&self, dialect: Dialect) -> Result<String, String> {
        let value = self.expr.emit(dialect, &self.inputs)?;
        let out = self.output()?;
        let n = self.inputs.len();
        let mut s = helpers(dialect, &value);
        s.push_str(&header(dialect, &self.inputs, out));
        let mut line = |text: String| {
            let _ = writeln!(s, "    {text}");
        };
        if self.expr.loads() {
            for k in 0..n {
                line(match dialect {
                    Dialect::Wgsl => format!("let len{k} = arrayLength(&in{k});"),
                    Dialect::Cuda => {
                        format!(
                            "const unsigned int len{k} = params[{}u];",
                            self.lens_at() + k
                        )
                    }
                });
            }
        }
        let viewed: Vec<usize> = (0..n).filter(|&k| self.expr.reads_view(k)).collect();
        match self.rank {
            None => {
                for &k in &viewed {
                    line(decl(
                        dialect,
                        self.inputs[k],
                        &format!("x{k}"),
                        &format!("in{k}[i]"),
                    ));
                }
            }
            Some(rank) => {
                // Coordinates from the index, last axis fastest; then each input's element.
                line(var(dialect, "rest", "i"));
                for axis in (0..rank).rev() {
                    let dim = format!("params[{}u]", 1 + axis);
                    line(decl_u32(
                        dialect,
                        &format!("c{axis}"),
                        &format!("rest % {dim}"),
                    ));
                    line(format!("rest = rest / {dim};"));
                }
                for &k in &viewed {
                    let base = 1 + rank + k * (rank + 1);
                    let mut offset = format!("params[{base}u]");
                    for axis in 0..rank {
                        let _ = write!(offset, " + c{axis} * params[{}u]", base + 1 + axis);
                    }
                    line(decl(
                        dialect,
                        self.inputs[k],
                        &format!("x{k}"),
                        &format!("in{k}[{offset}]"),
                    ));
                }
            }
        }
        line(format!("out[i] = {value};"));
        s.push_str("}\n");
        Ok(s)
    }
}

/// A reduction of one input over some of its axes: one thread per output element, walking
/// its reduced elements in row-major order, so sums add in the same order as on the CPU.
/// Parameters: `[outputs, count, kept rank, reduced rank, kept dims, kept strides, reduced
/// dims, reduced strides]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReduceProgram {
    pub kind: ReduceKind,
    pub scalar: Scalar,
    /// Thread `i` reduces chunk `i % chunks` of output `i / chunks` (a partial result; the
    /// parameters end with `[chunks, chunk size]`), not the whole of output `i`.
    pub chunked: bool,
}

impl ReduceProgram {
    fn reduce_source(&self, dialect: Dialect) -> Result<String, String> {
        let ty = self.scalar.storage(dialect);
        let wgsl = dialect == Dialect::Wgsl;
        let zero = literal(dialect, self.scalar, 0.0);
        let (init, combine, finish) = match (self.kind, self.scalar) {
            (_, Scalar::Bool) => return Err("a reduction of bools".into()),
            (ReduceKind::Mean, Scalar::I32) => return Err("an integer mean".into()),
            (ReduceKind::Sum, Scalar::I32) if !wgsl => (
                zero,
                "(int)((unsigned int)acc + (unsigned int)v)".to_string(),
                "acc".to_string(),
            ),
            (ReduceKind::Sum, _) => (zero, "acc + v".into(), "acc".into()),
            (ReduceKind::Mean, _) => (
                zero,
                "acc + v".into(),
                if wgsl {
                    "acc / f32(max(count, 1u))".into()
                } else {
                    "acc / (float)max(count, 1u)".into()
                },
            ),
            // NaN wins over any number, as on the CPU.
            (ReduceKind::Max, Scalar::F32) => (
                literal(dialect, Scalar::F32, f64::NEG_INFINITY),
                select(
                    dialect,
                    &format!("v > acc || {}", is_nan(dialect, "v")),
                    "v",
                    "acc",
                ),
                "acc".into(),
            ),
            (ReduceKind::Max, _) => (
                literal(dialect, Scalar::I32, f64::from(i32::MIN)),
                select(dialect, "v > acc", "v", "acc"),
                "acc".into(),
            ),
        };
        let mut s = header(dialect, &[self.scalar], self.scalar);
        let mut line = |text: &str| {
            let _ = writeln!(s, "    {text}");
        };
        line(&decl_u32(dialect, "count", "params[1]"));
        line(&decl_u32(dialect, "nk", "params[2]"));
        line(&decl_u32(dialect, "nr", "params[3]"));
        if self.chunked {
            line(&decl_u32(dialect, "pc", "4u + 2u * nk + 2u * nr"));
            line(&decl_u32(dialect, "chunks", "params[pc]"));
            line(&decl_u32(dialect, "o", "i / chunks"));
            line(&decl_u32(dialect, "lo", "(i % chunks) * params[pc + 1u]"));
            line(&decl_u32(dialect, "hi", "min(count, lo + params[pc + 1u])"));
        } else {
            line(&decl_u32(dialect, "o", "i"));
            line(&decl_u32(dialect, "lo", "0u"));
            line(&decl_u32(dialect, "hi", "count"));
        }
        line(&var(dialect, "rest", "o"));
        line(&var(dialect, "base", "0u"));
        line(&for_range(dialect, "d", "0u", "nk"));
        line(&format!("    {}", decl_u32(dialect, "axis", "nk - 1u - d")));
        line(&format!(
            "    {}",
            decl_u32(dialect, "dim", "params[4u + axis]")
        ));
        line("    base += (rest % dim) * params[4u + nk + axis];");
        line("    rest = rest / dim;");
        line("}");
        line(&decl_u32(dialect, "r0", "4u + 2u * nk"));
        line(&if wgsl {
            format!("var acc: {ty} = {init};")
        } else {
            format!("{ty} acc = {init};")
        });
        line(&for_range(dialect, "j", "lo", "hi"));
        line(&format!("    {}", var(dialect, "r", "j")));
        line(&format!("    {}", var(dialect, "off", "base")));
        line(&format!("    {}", for_range(dialect, "d", "0u", "nr")));
        line(&format!(
            "        {}",
            decl_u32(dialect, "axis", "nr - 1u - d")
        ));
        line(&format!(
            "        {}",
            decl_u32(dialect, "dim", "params[r0 + axis]")
        ));
        line("        off += (r % dim) * params[r0 + nr + axis];");
        line("        r = r / dim;");
        line("    }");
        line(&format!(
            "    {}",
            decl(dialect, self.scalar, "v", "in0[off]")
        ));
        line(&format!("    acc = {combine};"));
        line("}");
        line(&format!("out[i] = {finish};"));
        s.push_str("}\n");
        Ok(s)
    }
}

/// Rows of `in0` summed by segment, the gradient of a gather: output row `r` (of `inner`
/// elements) adds rows `in2[t]` of `in0` for `t` in `in1[r]..in1[r + 1]`, in that order, so
/// it adds in the CPU's order. Inputs: the rows (f32), then the segments' offsets and the
/// row numbers (i32); parameters `[outputs, inner]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSumProgram;

impl SegmentSumProgram {
    fn segment_source(&self, dialect: Dialect) -> String {
        let word = |x: &str| match dialect {
            Dialect::Wgsl => format!("u32({x})"),
            Dialect::Cuda => format!("(unsigned int)({x})"),
        };
        let mut s = header(
            dialect,
            &[Scalar::F32, Scalar::I32, Scalar::I32],
            Scalar::F32,
        );
        let mut line = |text: &str| {
            let _ = writeln!(s, "    {text}");
        };
        line(&decl_u32(dialect, "inner", "params[1]"));
        line(&decl_u32(dialect, "r", "i / inner"));
        line(&decl_u32(dialect, "k", "i % inner"));
        let zero = literal(dialect, Scalar::F32, 0.0);
        line(&match dialect {
            Dialect::Wgsl => format!("var acc: f32 = {zero};"),
            Dialect::Cuda => format!("float acc = {zero};"),
        });
        line(&for_range(
            dialect,
            "t",
            &word("in1[r]"),
            &word("in1[r + 1u]"),
        ));
        line(&format!(
            "    acc = acc + in0[{} * inner + k];",
            word("in2[t]")
        ));
        line("}");
        line("out[i] = acc;");
        s.push_str("}\n");
        s
    }
}

/// The index of the first maximum along an axis, as the CPU scans for it: one thread per
/// output walks the axis in order and takes an element only if it is greater, so a NaN never
/// wins and a NaN first is never beaten. Parameters `[outputs, n, inner]`: output `i` scans
/// `in0[(o * n + k) * inner + j]` for `o = i / inner`, `j = i % inner`; the result is i32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgMaxProgram {
    pub scalar: Scalar,
}

impl ArgMaxProgram {
    fn argmax_source(&self, dialect: Dialect) -> Result<String, String> {
        let nan = |v: &str| match self.scalar {
            Scalar::F32 => is_nan(dialect, v),
            Scalar::I32 => "false".into(),
            Scalar::Bool => String::new(),
        };
        if self.scalar == Scalar::Bool {
            return Err("argmax of bools".into());
        }
        let mut s = header(dialect, &[self.scalar], Scalar::I32);
        let mut line = |text: &str| {
            let _ = writeln!(s, "    {text}");
        };
        line(&decl_u32(dialect, "n", "params[1]"));
        line(&decl_u32(dialect, "inner", "params[2]"));
        line(&decl_u32(
            dialect,
            "base",
            "(i / inner) * n * inner + i % inner",
        ));
        line(&var(dialect, "best", "0u"));
        line(&match dialect {
            Dialect::Wgsl => "var top = in0[base];".to_string(),
            Dialect::Cuda => format!("{} top = in0[base];", self.scalar.storage(dialect)),
        });
        line(&for_range(dialect, "k", "1u", "n"));
        line(&format!(
            "    {}",
            decl(dialect, self.scalar, "v", "in0[base + k * inner]")
        ));
        line(&format!(
            "    if (!{} && !{} && v > top) {{ best = k; top = v; }}",
            nan("v"),
            nan("top")
        ));
        line("}");
        line(&match dialect {
            Dialect::Wgsl => "out[i] = i32(best);".to_string(),
            Dialect::Cuda => "out[i] = (int)best;".to_string(),
        });
        s.push_str("}\n");
        Ok(s)
    }
}

impl GpuProgram for ArgMaxProgram {
    fn source(&self, dialect: Dialect) -> Result<String, String> {
        self.argmax_source(dialect)
    }
}

impl GpuProgram for SegmentSumProgram {
    fn source(&self, dialect: Dialect) -> Result<String, String> {
        Ok(self.segment_source(dialect))
    }
}

impl GpuProgram for MapProgram {
    fn source(&self, dialect: Dialect) -> Result<String, String> {
        self.map_source(dialect)
    }
}

impl GpuProgram for ReduceProgram {
    fn source(&self, dialect: Dialect) -> Result<String, String> {
        self.reduce_source(dialect)
    }
}

/// A parameter word, or an error for a size one kernel cannot index.
pub fn word(v: usize) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{v} elements are too many for one GPU kernel"))
}

/// Bindings, the entry point and the element index, up to the bounds check.
fn header(dialect: Dialect, inputs: &[Scalar], out: Scalar) -> String {
    let n = inputs.len();
    let mut s = String::new();
    match dialect {
        Dialect::Wgsl => {
            for (k, ty) in inputs.iter().enumerate() {
                let ty = ty.storage(dialect);
                let _ = writeln!(
                    s,
                    "@group(0) @binding({k}) var<storage, read> in{k}: array<{ty}>;"
                );
            }
            let ty = out.storage(dialect);
            let _ = writeln!(
                s,
                "@group(0) @binding({n}) var<storage, read_write> out: array<{ty}>;"
            );
            let _ = writeln!(
                s,
                "@group(0) @binding({}) var<storage, read> params: array<u32>;",
                n + 1
            );
            let _ = writeln!(s, "@compute @workgroup_size({WORKGROUP_SIZE})");
            let _ = writeln!(s, "fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) thread: u32, @builtin(num_workgroups) groups: vec3<u32>) {{");
        }
        Dialect::Cuda => {
            let mut args: Vec<String> = (inputs.iter().enumerate())
                .map(|(k, ty)| format!("const {}* __restrict__ in{k}", ty.storage(dialect)))
                .collect();
            args.push(format!("{}* __restrict__ out", out.storage(dialect)));
            args.push("const unsigned int* __restrict__ params".into());
            let _ = writeln!(
                s,
                "extern \"C\" __global__ void __launch_bounds__({WORKGROUP_SIZE}) {CUDA_ENTRY}({}) {{",
                args.join(", ")
            );
            let _ = writeln!(s, "    const unsigned int thread = threadIdx.x;");
            let _ = writeln!(s, "    const uint3 group = blockIdx;");
            let _ = writeln!(s, "    const dim3 groups = gridDim;");
        }
    }
    let _ = writeln!(
        s,
        "    {}",
        decl_u32(
            dialect,
            "i",
            &format!("(group.y * groups.x + group.x) * {WORKGROUP_SIZE}u + thread")
        )
    );
    let _ = writeln!(s, "    if (i >= params[0]) {{ return; }}");
    s
}

fn decl_u32(dialect: Dialect, name: &str, value: &str) -> String {
    match dialect {
        Dialect::Wgsl => format!("let {name} = {value};"),
        Dialect::Cuda => format!("const unsigned int {name} = {value};"),
    }
}

fn decl(dialect: Dialect, ty: Scalar, name: &str, value: &str) -> String {
    match dialect {
        Dialect::Wgsl => format!("let {name} = {value};"),
        Dialect::Cuda => format!("const {} {name} = {value};", ty.storage(dialect)),
    }
}

/// A mutable u32.
fn var(dialect: Dialect, name: &str, value: &str) -> String {
    match dialect {
        Dialect::Wgsl => format!("var {name}: u32 = {value};"),
        Dialect::Cuda => format!("unsigned int {name} = {value};"),
    }
}

/// `for (name = from; name < to; name++) {` over u32.
fn for_range(dialect: Dialect, name: &str, from: &str, to: &str) -> String {
    match dialect {
        Dialect::Wgsl => format!("for (var {name} = {from}; {name} < {to}; {name}++) {{"),
        Dialect::Cuda => format!("for (unsigned int {name} = {from}; {name} < {to}; {name}++) {{"),
    }
}

fn select(dialect: Dialect, cond: &str, then: &str, otherwise: &str) -> String {
    match dialect {
        Dialect::Wgsl => format!("select({otherwise}, {then}, {cond})"),
        Dialect::Cuda => format!("(({cond}) ? ({then}) : ({otherwise}))"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::GpuProgram;
    use crate::kernels::gpu::expr::BinaryOp;

    #[test]
    fn a_strided_map_reads_each_input_through_its_view() {
        let program = MapProgram {
            expr: Expr::binary(BinaryOp::Add, Expr::input(0), Expr::input(1)),
            inputs: vec![Scalar::F32, Scalar::F32],
            rank: Some(2),
        };
        let views = [
            View {
                offset: 0,
                strides: vec![3, 1],
            },
            View {
                offset: 5,
                strides: vec![0, 1],
            },
        ];
        let params = program.params(&[2, 3], &views, &[6, 3]).expect("params");
        assert_eq!(params, vec![6, 2, 3, 0, 3, 1, 5, 0, 1]);
        for dialect in [Dialect::Wgsl, Dialect::Cuda] {
            let source = program.source(dialect).expect("source");
            assert!(
                source.contains("in1[params[6u] + c0 * params[7u] + c1 * params[8u]]"),
                "{source}"
            );
        }
    }
}
