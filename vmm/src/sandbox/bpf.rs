//! A role's allow-list compiled to classic BPF as a binary search over
//! system call numbers.
//!
//! Why not seccompiler's compiler: it tests the allowed numbers one after
//! another, and installing a filter makes the kernel run it once for every
//! system call number (seccomp's action cache, `seccomp_cache_prepare`,
//! which marks the calls a filter always allows). A number no rule names
//! walks the whole chain, so that start-up cost grows with the filter's
//! length: measured here, a 200-instruction chain took 0.5-0.8 ms to
//! install and the same filter entered through one jump over the chain
//! 0.08 ms. Every VMM thread installs its own filter at start-up, the vCPU
//! thread before its first `KVM_RUN`. A search tree keeps every number's
//! path at about `2 log2(calls)` instructions, and a system call made at
//! run time (`KVM_RUN` included) takes the same short path.
//!
//! The program:
//! - `ld arch`; anything but x86-64 kills the process (as seccompiler's
//!   filters do: an `int 0x80` from a 64-bit process has no business here);
//! - `ld nr`; a tree of `jge` over the sorted numbers, each leaf a `jeq`
//!   to the number's rule or to the trap;
//! - each rule with argument checks: one `jeq` per allowed value of the
//!   argument's low 32 bits (the kernel reads these arguments as `int` or
//!   `unsigned int`), masked first where the rule says so;
//! - `ret TRAP` and `ret ALLOW`, shared.
//!
//! Jumps are written with labels and laid out by `assemble`: a
//! conditional jump whose target is more than 255 instructions away becomes
//! a short test over two `ja` (which reach 2^32).
use std::collections::BTreeMap;

use seccompiler::{sock_filter, BpfProgram};

/// `AUDIT_ARCH_X86_64` (`linux/audit.h`): `EM_X86_64 | __AUDIT_ARCH_64BIT |
/// __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// The low 32 bits of argument `i` (little endian).
const fn arg_low(i: u8) -> u32 {
    16 + 8 * i as u32
}

// Classic BPF opcodes (`linux/bpf_common.h`, through libc).
const fn opcode(bits: u32) -> u16 {
    bits as u16
}
const LD_W_ABS: u16 = opcode(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS);
const ALU_AND_K: u16 = opcode(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K);
const JMP_JA: u16 = opcode(libc::BPF_JMP | libc::BPF_JA);
const JMP_JEQ_K: u16 = opcode(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K);
const JMP_JGE_K: u16 = opcode(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K);
#[cfg(test)]
const JMP_JGT_K: u16 = opcode(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K);
const RET_K: u16 = opcode(libc::BPF_RET | libc::BPF_K);

/// One test of an argument: `(arg & mask) == value` on its low 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// The argument, 0 to 5.
    pub arg: u8,
    /// The bits compared (`u32::MAX`: all).
    pub mask: u32,
    /// What they must equal.
    pub value: u32,
}

/// When a system call is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Whatever its arguments.
    Always,
    /// When one of these checks holds (in this order: put the hot one
    /// first).
    AnyOf(Vec<Check>),
}

/// A place in the program that jumps name before it is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

/// An instruction whose jumps name labels.
#[derive(Clone, Copy, Debug)]
enum Op {
    Load(u32),
    And(u32),
    /// `goto label`.
    Jump(Label),
    /// `if A <op> k goto yes else goto no`, with `op` a `JMP_*_K` code.
    Branch {
        code: u16,
        k: u32,
        yes: Label,
        no: Label,
    },
    Return(u32),
    /// Where a label points (no instruction).
    Mark(Label),
}

/// The program being written: operations and a label counter.
#[derive(Default)]
struct Writer {
    ops: Vec<Op>,
    labels: usize,
}

impl Writer {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// The search over `numbers[..]` (sorted, distinct), each found number
    /// jumping to its target, anything else to `miss`.
    fn search(&mut self, numbers: &[(u32, Label)], miss: Label) {
        match numbers {
            [] => self.push(Op::Jump(miss)),
            [(nr, target)] => self.push(Op::Branch {
                code: JMP_JEQ_K,
                k: *nr,
                yes: *target,
                no: miss,
            }),
            _ => {
                let (low, high) = numbers.split_at(numbers.len() / 2);
                let (left, right) = (self.label(), self.label());
                self.push(Op::Branch {
                    code: JMP_JGE_K,
                    k: high[0].0,
                    yes: right,
                    no: left,
                });
                self.push(Op::Mark(left));
                self.search(low, miss);
                self.push(Op::Mark(right));
                self.search(high, miss);
            }
        }
    }
}

/// Compiles `rules` (by system call number) to a filter that returns
/// `allow` for what they allow and `deny` for everything else.
pub fn compile(rules: &BTreeMap<u32, Rule>, allow: u32, deny: u32) -> BpfProgram {
    let mut w = Writer::default();
    let (allowed, denied, native) = (w.label(), w.label(), w.label());
    let kill = w.label();
    w.push(Op::Load(ARCH));
    w.push(Op::Branch {
        code: JMP_JEQ_K,
        k: AUDIT_ARCH_X86_64,
        yes: native,
        no: kill,
    });
    w.push(Op::Mark(native));
    w.push(Op::Load(NR));

    let mut targets = Vec::new();
    let mut blocks = Vec::new();
    for (&nr, rule) in rules {
        match rule {
            Rule::Always => targets.push((nr, allowed)),
            Rule::AnyOf(checks) => {
                let block = w.label();
                targets.push((nr, block));
                blocks.push((block, checks));
            }
        }
    }
    w.search(&targets, denied);

    for (block, checks) in blocks {
        w.push(Op::Mark(block));
        // The accumulator holds this argument unmasked (no reload needed).
        let mut loaded = None;
        for check in checks {
            if loaded != Some(check.arg) {
                w.push(Op::Load(arg_low(check.arg)));
                loaded = Some(check.arg);
            }
            if check.mask != u32::MAX {
                w.push(Op::And(check.mask));
                loaded = None;
            }
            let next = w.label();
            w.push(Op::Branch {
                code: JMP_JEQ_K,
                k: check.value & check.mask,
                yes: allowed,
                no: next,
            });
            w.push(Op::Mark(next));
        }
        w.push(Op::Jump(denied));
    }
    w.push(Op::Mark(denied));
    w.push(Op::Return(deny));
    w.push(Op::Mark(allowed));
    w.push(Op::Return(allow));
    w.push(Op::Mark(kill));
    w.push(Op::Return(libc::SECCOMP_RET_KILL_PROCESS));
    assemble(&w.ops, w.labels)
}

/// Lays `ops` out: every label resolved, every jump forward, conditional
/// jumps that cannot reach their target in 255 instructions lengthened, and
/// jumps to the next instruction dropped.
fn assemble(ops: &[Op], labels: usize) -> BpfProgram {
    // Which branches need the long form; grows until the layout is stable
    // (lengthening only moves targets further away, so this ends).
    let mut long = vec![false; ops.len()];
    loop {
        let layout = Layout::new(ops, labels, &long);
        let mut changed = false;
        for (i, op) in ops.iter().enumerate() {
            if let Op::Branch { yes, no, .. } = *op {
                if !long[i] && (layout.offset(i, yes) > 255 || layout.offset(i, no) > 255) {
                    long[i] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return layout.emit(ops, &long);
        }
    }
}

/// Where each op and each label lands for a choice of long branches.
struct Layout {
    /// Each op's first instruction.
    at: Vec<usize>,
    /// Each op's instruction count.
    size: Vec<usize>,
    /// Each label's instruction.
    label: Vec<usize>,
}

impl Layout {
    fn new(ops: &[Op], labels: usize, long: &[bool]) -> Self {
        let mut layout = Layout {
            at: Vec::with_capacity(ops.len()),
            size: Vec::with_capacity(ops.len()),
            label: vec![usize::MAX; labels],
        };
        let mut pc = 0;
        for (i, op) in ops.iter().enumerate() {
            let size = match *op {
                Op::Mark(label) => {
                    layout.label[label.0] = pc;
                    0
                }
                // A jump to a label marked right after it is left out
                // (marks take no room, so no layout changes that).
                Op::Jump(_) => usize::from(!falls_through(ops, i)),
                Op::Branch { .. } if long[i] => 3,
                _ => 1,
            };
            layout.at.push(pc);
            layout.size.push(size);
            pc += size;
        }
        assert!(
            layout.label.iter().all(|&at| at != usize::MAX),
            "every label is marked"
        );
        layout
    }

    /// How far op `i`'s jump to `label` goes (from the instruction after
    /// op `i`'s first).
    fn offset(&self, i: usize, label: Label) -> usize {
        let next = self.at[i] + 1;
        let target = self.label[label.0];
        assert!(target >= next, "a backward jump");
        target - next
    }

    fn emit(&self, ops: &[Op], long: &[bool]) -> BpfProgram {
        let stmt = |code, k| sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        let mut program = BpfProgram::with_capacity(self.at.last().map_or(0, |a| a + 1));
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Mark(_) => {}
                Op::Load(k) => program.push(stmt(LD_W_ABS, k)),
                Op::And(k) => program.push(stmt(ALU_AND_K, k)),
                Op::Return(k) => program.push(stmt(RET_K, k)),
                Op::Jump(label) => {
                    if self.size[i] == 1 {
                        program.push(stmt(JMP_JA, self.offset(i, label) as u32));
                    }
                }
                Op::Branch { code, k, yes, no } if long[i] => {
                    // jxx k, 0, 1; ja yes; ja no: each `ja` one further on.
                    program.push(sock_filter {
                        code,
                        jt: 0,
                        jf: 1,
                        k,
                    });
                    program.push(stmt(JMP_JA, (self.offset(i, yes) - 1) as u32));
                    program.push(stmt(JMP_JA, (self.offset(i, no) - 2) as u32));
                }
                Op::Branch { code, k, yes, no } => program.push(sock_filter {
                    code,
                    jt: u8::try_from(self.offset(i, yes)).expect("laid out within reach"),
                    jf: u8::try_from(self.offset(i, no)).expect("laid out within reach"),
                    k,
                }),
            }
        }
        program
    }
}

/// Whether the jump at `i` targets a label marked before any instruction
/// follows it.
fn falls_through(ops: &[Op], i: usize) -> bool {
    let Op::Jump(target) = ops[i] else {
        return false;
    };
    ops[i + 1..]
        .iter()
        .take_while(|op| matches!(op, Op::Mark(_)))
        .any(|op| matches!(op, Op::Mark(l) if *l == target))
}

/// What a classic BPF filter returns for `data` (the instructions
/// [`compile`] and seccompiler write: loads, `and`, `ja`, `jeq`, `jge`,
/// `jgt`, `ret`), and how many instructions it ran. For tests.
#[cfg(test)]
pub fn run(program: &[sock_filter], data: &[u8; 64]) -> (u32, usize) {
    let mut pc = 0;
    let mut a: u32 = 0;
    let mut steps = 0;
    loop {
        let insn = &program[pc];
        steps += 1;
        pc += 1;
        let k = insn.k;
        match insn.code {
            LD_W_ABS => {
                let at = k as usize;
                a = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            }
            ALU_AND_K => a &= k,
            JMP_JA => pc += k as usize,
            RET_K => return (k, steps),
            code => {
                let taken = match code {
                    JMP_JEQ_K => a == k,
                    JMP_JGE_K => a >= k,
                    JMP_JGT_K => a > k,
                    _ => panic!("unexpected BPF opcode {code:#x}"),
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
        }
    }
}
