# The kernel configuration scripts/linux/build.sh applies on top of
# `make tinyconfig` (then `make olddefconfig`). Each option says why it is
# needed; anything not listed stays as tinyconfig leaves it (off), which is
# what keeps the build to minutes and the boot short under kvm_pvm, where
# every guest kernel instruction is emulated.

# Options turned on. Format: NAME  reason.
ENABLE_OPTIONS='
64BIT                 x86_64 kernel: long mode, as our VMM and the PVH entry expect
HYPERVISOR_GUEST      needed for PVH and KVM_GUEST
PARAVIRT              needed by KVM_GUEST
KVM_GUEST             kvmclock and KVM detection, as a cloud kernel has
PVH                   the XEN_ELFNOTE_PHYS32_ENTRY note in vmlinux: our VMM and QEMU -kernel boot it directly
PRINTK                the kernel log, which the test reads
EARLY_PRINTK          earlyprintk=serial, for debugging a boot that stops early
BUG                   a real kernel reports BUG/WARN, the test fails on them
TTY                   consoles and the shell
VT                    the keyboard reaches a virtual terminal (the path a PC console takes)
VT_CONSOLE            kernel messages on the VT too (as on a PC)
SERIAL_8250           the 16550 COM1 driver
SERIAL_8250_CONSOLE   console=ttyS0
INPUT                 the input layer
INPUT_KEYBOARD        keyboards
INPUT_EVDEV           /dev/input/event*, read by evkeys
SERIO                 the serio bus
SERIO_I8042           the i8042 driver probing our controller
SERIO_LIBPS2          used by atkbd
KEYBOARD_ATKBD        "AT Translated Set 2 keyboard"
RTC_CLASS             the RTC class
RTC_HCTOSYS           rtc_cmos sets the system clock at boot
RTC_DRV_CMOS          the MC146818 driver
BLK_DEV_INITRD        --initrd / -initrd
DEVTMPFS              /dev populated by the kernel
PROC_FS               /proc/interrupts
SYSFS                 /sys
BINFMT_ELF            busybox and the helpers are static ELF programs
BINFMT_SCRIPT         /init is a shell script
MULTIUSER             busybox expects uid/gid syscalls
FUTEX                 glibc static programs use futexes
POSIX_TIMERS          busybox sleep/timeout
FILE_LOCKING          busybox
SHMEM                 tmpfs-backed rootfs for the initramfs
TMPFS                 tmpfs
UNIX98_PTYS           busybox sh job control niceties
MAGIC_SYSRQ           SysRq for debugging a hung guest
'

# Options that must stay off. Format: NAME  reason.
DISABLE_OPTIONS='
MODULES               one image, nothing to load
SMP                   the VMM has one vCPU
RANDOMIZE_BASE        nokaslr is then implicit: nothing to randomise at PVH entry
FTRACE                its boot self-checks run for minutes under emulation (issue 12)
KPROBES               its boot-time tests run under emulation too
PCI                   the machine has no PCI host bridge; probing port 0xCF8 only costs time
ACPI                  no ACPI tables in the PVH boot
'

apply_config() {
    local cfg="$1" name
    while read -r name _; do
        if [ -n "$name" ]; then "$cfg" --enable "$name"; fi
    done <<<"$ENABLE_OPTIONS"
    while read -r name _; do
        if [ -n "$name" ]; then "$cfg" --disable "$name"; fi
    done <<<"$DISABLE_OPTIONS"
}

# After olddefconfig: every option asked for is really set (a dependency
# that silently dropped one would otherwise build a kernel without it).
check_config() {
    local name bad=0
    while read -r name _; do
        [ -z "$name" ] && continue
        grep -q "^CONFIG_$name=y" .config || { echo "config: CONFIG_$name did not stay on" >&2; bad=1; }
    done <<<"$ENABLE_OPTIONS"
    while read -r name _; do
        [ -z "$name" ] && continue
        if grep -q "^CONFIG_$name=y" .config; then echo "config: CONFIG_$name did not stay off" >&2; bad=1; fi
    done <<<"$DISABLE_OPTIONS"
    return $bad
}
