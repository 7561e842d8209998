# Peer baseline (TensorFlow graph mode), copied from shared/bench/tf_seed_program.py; run by bench/compare.sh.
# One change: the SEED environment variable picks the seed (default 0, as in the original).
"""The seed's program (softmax regression, GradientDescent(0.01) on -sum(y_*log y), 1000 steps of 100)
run in TensorFlow's own graph mode on Fashion-MNIST from Debian's dataset-fashion-mnist package.
Also an MLP variant. Prints accuracy and microseconds per training step on this machine."""
import gzip, os, sys, time
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("THREADS", "2")))
D = os.environ.get("FMNIST", "/usr/share/datasets/fashion-mnist")
def idx(name):
    with gzip.open(os.path.join(D, name)) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
xtr = idx("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
ytr = np.eye(10, dtype=np.float32)[idx("train-labels-idx1-ubyte.gz")]
xte = idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
yte = np.eye(10, dtype=np.float32)[idx("t10k-labels-idx1-ubyte.gz")]
v1 = tf.compat.v1
def run(name, hidden, steps, lr, seed=int(os.environ.get("SEED", "0"))):
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(tf.float32, [None, 784]); y_ = v1.placeholder(tf.float32, [None, 10])
        h, fan = x, 784
        for width in hidden:
            W = tf.Variable(v1.truncated_normal([fan, width], stddev=0.1)); b = tf.Variable(tf.zeros([width]))
            h, fan = tf.nn.relu(tf.matmul(h, W) + b), width
        W = tf.Variable(tf.zeros([fan, 10])); b = tf.Variable(tf.zeros([10]))
        y = tf.nn.softmax(tf.matmul(h, W) + b)
        xent = -tf.reduce_sum(y_ * tf.math.log(tf.clip_by_value(y, 1e-10, 1.0)))
        step = v1.train.GradientDescentOptimizer(lr).minimize(xent)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1)), tf.float32))
        with v1.Session() as s:
            s.run(v1.global_variables_initializer())
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(xtr))
            t = time.perf_counter()
            for i in range(steps):
                j = order[(i * 100) % (len(xtr) - 99): (i * 100) % (len(xtr) - 99) + 100]
                s.run(step, {x: xtr[j], y_: ytr[j]})
            dt = time.perf_counter() - t
            a = s.run(acc, {x: xte, y_: yte})
    print(f"{name}: test accuracy {a:.4f}, {steps} steps in {dt:.2f} s = {dt / steps * 1e6:.0f} us/step (batch 100)", flush=True)
only = os.environ.get("ONLY", "")  # "seed" or "mlp" runs just that program
if only in ("", "seed"):
    run("seed softmax 1000x100 lr0.01", [], 1000, 0.01)
if only == "":
    run("softmax 6000x100 (10 epochs) lr0.01", [], 6000, 0.01)
if only in ("", "mlp"):
    run("mlp 784-256-10 6000x100 lr0.001", [256], 6000, 0.001)
print("tensorflow", tf.__version__)
