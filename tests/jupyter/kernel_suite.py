"""jupyter_kernel_test's protocol suite against the Sluice kernel, every sample filled in.

Run with JUPYTER_PATH pointing at a folder where `sluice-kernel install --prefix` wrote the
kernelspec:  python kernel_suite.py
"""

import sys
import unittest

import jupyter_kernel_test as jkt

# The first cell may wait for evcxr to start (and, on a new build folder, to build the
# engine's client code).
WARMUP_TIMEOUT = 900


class SluiceKernelTests(jkt.KernelTests):
    kernel_name = "sluice"
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("oops");'
    code_generate_error = 'panic!("this cell fails");'
    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": "let v = vec![1, 2, 3];\nv.len()", "result": "3"},
        {"code": '"sluice".to_uppercase()', "result": '"SLUICE"'},
    ]
    # Rich output in evcxr's block format (what plotters' and other crates' evcxr support
    # print), Sluice's own helpers, and a graph drawing: each a display_data of its own.
    code_display_data = [
        {
            "code": 'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT");',
            "mime": "text/html",
        },
        {
            "code": 'println!("EVCXR_BEGIN_CONTENT image/svg+xml\\n<svg xmlns=\\"http://www.w3.org/2000/svg\\" width=\\"4\\" height=\\"4\\"/>\\nEVCXR_END_CONTENT");',
            "mime": "image/svg+xml",
        },
        {
            "code": 'println!("EVCXR_BEGIN_CONTENT image/png\\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\\nEVCXR_END_CONTENT");',
            "mime": "image/png",
        },
        {"code": 'display_html("<i>helper</i>");', "mime": "text/html"},
        {"code": "sess.show_graph();", "mime": "image/svg+xml"},
    ]
    # From the standard library (rust-src) and from the prelude.
    completion_samples = [
        {"text": "let zebra_count = 1; zebra_c", "matches": {"zebra_count"}},
        {"text": "std::mem::sw", "matches": {"swap"}},
        {"text": "std::collections::HashM", "matches": {"HashMap"}},
        {"text": "let d = mnist_dig", "matches": {"mnist_digits"}},
        {"text": "let o = GradientDesc", "matches": {"GradientDescent"}},
    ]
    complete_code_samples = ["let a = 1;", "fn f() { (1, [2]) }", 'let s = "{";', "1 + 2"]
    incomplete_code_samples = ["fn f() {", "let v = vec![1,", 'let s = "abc', "/* open"]
    invalid_code_samples = ["let a = 1);", "(]"]
    code_inspect_sample = "std::vec::Vec::new"
    code_history_pattern = "1 + 2"
    supported_history_operations = ("tail", "range", "search")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        reply = cls.kc.execute_interactive("let warmed_up = 1;", timeout=WARMUP_TIMEOUT)
        assert reply["content"]["status"] == "ok", reply["content"]



class SluiceIopubWelcomeTests(jkt.IopubWelcomeTests):
    """JEP 65: a client that subscribes to iopub is welcomed."""

    kernel_name = "sluice"
    support_iopub_welcome = True


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    # Every sample is filled in: a skipped test means the suite did not test something.
    # (Pagers and clear_output are IPython features this kernel does not offer.)
    not_offered = ("test_pager", "test_clear_output")
    skipped = [
        (t, why)
        for t, why in result.skipped
        if t._testMethodName not in not_offered
    ]
    for test, why in skipped:
        print(f"unexpectedly skipped: {test}: {why}", file=sys.stderr)
    sys.exit(0 if result.wasSuccessful() and not skipped else 1)
