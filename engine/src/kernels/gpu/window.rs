//! Index expressions for windows over NHWC images, shared by the GPU's convolutions and
//! pools: where a window element lies in the image, and which windows cover a pixel.

use super::expr::{BinaryOp, Expr};
use super::index::{add, and, int, linear, mul, sub, within};
use crate::kernels::cpu::window::Geometry;

/// Window element `(i, j)` of the window at output pixel `(oy, ox)` of image `n`, channel
/// `ch`: its flat index in the image tensor, and whether it lies inside the image (padding
/// does not).
pub(crate) fn element(
    g: &Geometry,
    n: Expr,
    oy: Expr,
    ox: Expr,
    i: Expr,
    j: Expr,
    ch: Expr,
) -> (Expr, Expr) {
    let iy = sub(add(mul(oy, int(g.sh)), i), int(g.ph));
    let ix = sub(add(mul(ox, int(g.sw)), j), int(g.pw));
    let valid = and(
        within(iy.clone(), Expr::i32(0), int(g.h)),
        within(ix.clone(), Expr::i32(0), int(g.w)),
    );
    let at = linear(&[n, iy, ix, ch], &[g.h * g.w * g.c, g.w * g.c, g.c, 1]);
    (at, valid)
}

/// The window of output pixel `(oy, ox)` that holds image pixel `(y, x)` as its element
/// `(i, j)`, if any: `(oy, ox)` and whether it exists (in range, and on the stride).
pub(crate) fn covering(g: &Geometry, y: Expr, x: Expr, i: usize, j: usize) -> (Expr, Expr, Expr) {
    let ty = sub(add(y, int(g.ph)), int(i));
    let tx = sub(add(x, int(g.pw)), int(j));
    let oy = Expr::binary(BinaryOp::Div, ty.clone(), int(g.sh));
    let ox = Expr::binary(BinaryOp::Div, tx.clone(), int(g.sw));
    // t = o * s exactly, with 0 <= o < out: t >= 0 first, as division truncates toward zero.
    let on_grid = |t: Expr, o: Expr, s: usize, out: usize| {
        and(
            Expr::binary(BinaryOp::Ge, t.clone(), Expr::i32(0)),
            and(
                Expr::binary(BinaryOp::Eq, mul(o.clone(), int(s)), t),
                Expr::binary(BinaryOp::Lt, o, int(out)),
            ),
        )
    };
    let valid = and(
        on_grid(ty, oy.clone(), g.sh, g.oh),
        on_grid(tx, ox.clone(), g.sw, g.ow),
    );
    (oy, ox, valid)
}
