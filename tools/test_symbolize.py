"""Host test of tools/symbolize against a program gcc builds with debug info (no Sirocco image needed)."""
import importlib.machinery
import importlib.util
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
loader = importlib.machinery.SourceFileLoader("symbolize", os.path.join(HERE, "symbolize"))
spec = importlib.util.spec_from_loader("symbolize", loader)
symbolize = importlib.util.module_from_spec(spec)
loader.exec_module(symbolize)

C = """
__attribute__((noinline)) int leaf(int x) {
    return x * 3;
}
__attribute__((noinline)) int caller(int x) {
    return leaf(x) + 1;
}
int main(void) { return caller(2); }
"""


class SymbolizeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        src = os.path.join(self.dir, "prog.c")
        self.prog = os.path.join(self.dir, "prog")
        with open(src, "w") as f:
            f.write(C)
        subprocess.run(["gcc", "-g", "-O1", "-fno-pie", "-no-pie", "-o", self.prog, src], check=True)
        nm = subprocess.run(["nm", self.prog], check=True, capture_output=True, text=True).stdout
        self.sym = {l.split()[2]: int(l.split()[0], 16) for l in nm.splitlines() if len(l.split()) == 3}

    def test_frames_get_function_file_and_line(self):
        leaf, caller = self.sym["leaf"], self.sym["caller"]
        log = [
            "sirocco: CPU exception 6 (invalid opcode), error code 0x0, at rip 0x%016x" % leaf,
            "backtrace (most recent call first):",
            # The faulting instruction (looked up as is), then a return address (one byte back: inside caller).
            "  #0  0x%016x leaf+0x0" % leaf,
            "  #1  0x%016x caller+0x9" % (caller + 9),
            "  #2  0x0000000000000000 ?",
        ]
        out = symbolize.symbolize(log, self.prog)
        text = "\n".join(out)
        self.assertIn("at leaf (", text)
        self.assertRegex(text, r"at caller \(.*prog\.c:\d+\)")
        self.assertEqual(out[:3], log[:3], "the report's own lines are kept as they were")
        # Every frame line is followed by its location; the unknown one by nothing.
        self.assertEqual(out[-1], log[-1])

    def test_a_panic_backtrace_looks_up_return_addresses_one_byte_back(self):
        caller = self.sym["caller"]
        found = symbolize.lookups(["PANIC: x", "  #0  0x%016x caller+0x4" % (caller + 4)])
        self.assertEqual(found, [(1, caller + 3)])
        found = symbolize.lookups(["sirocco: CPU exception 14", "  #0  0x%016x caller+0x4" % (caller + 4)])
        self.assertEqual(found, [(1, caller + 4)], "a faulting rip is exact")

    def test_a_missing_debug_file_is_a_clear_error(self):
        self.assertEqual(symbolize.main(["symbolize", os.path.join(self.dir, "nope.debug"), "/dev/null"]), 1)


if __name__ == "__main__":
    unittest.main()
