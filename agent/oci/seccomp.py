"""The default seccomp profile: an allow-list of system calls, written from what each call does.

A container may make the calls ordinary programs need (files, processes,
memory, signals, time, sockets, IPC, events). Everything else fails with
EPERM. Left out on purpose, because each reaches past the container's
namespaces into the shared kernel or the host:
  - loading code into the kernel: init_module, finit_module, delete_module,
    kexec_load, kexec_file_load, bpf, perf_event_open (unless the capability
    that licenses them is granted);
  - the kernel keyring, which no namespace separates: keyctl, add_key, request_key;
  - file handles that bypass the mount tree: open_by_handle_at (the
    "shocker" escape), name_to_handle_at;
  - mounting and namespaces: mount, umount2, pivot_root, setns, the new mount
    API, and clone/unshare with namespace flags — notably CLONE_NEWUSER,
    which unprivileged programs could otherwise use to gain a full set of
    capabilities over a fresh namespace (all allowed with CAP_SYS_ADMIN);
  - host-wide state: the clock, swap, reboot, accounting, quotas, the kernel
    log, I/O ports, the obsolete and the unused (userfaultfd, io_uring, vm86...).
Calls gated by a capability (`BY_CAPABILITY`) are allowed when the container
has that capability (`--cap-add`), as the kernel would then allow them anyway.

Names unknown to the running kernel or libseccomp are skipped by crun, so
the lists may hold calls newer than this machine. The profile is data: tests
check its content (tests/unit/test_oci_seccomp.py).
"""
from __future__ import annotations

import errno
import json
import platform
from collections.abc import Iterable

FILES = """
    access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2
    chown fchown fchownat lchown chown32 fchown32 lchown32 umask
    open openat openat2 creat close close_range dup dup2 dup3 fcntl fcntl64 flock
    read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
    lseek _llseek sendfile sendfile64 copy_file_range splice tee vmsplice readahead
    fadvise64 fadvise64_64 fallocate truncate truncate64 ftruncate ftruncate64
    fsync fdatasync sync syncfs sync_file_range
    stat stat64 lstat lstat64 fstat fstat64 newfstatat fstatat64 statx
    statfs statfs64 fstatfs fstatfs64
    mkdir mkdirat rmdir mknod mknodat link linkat symlink symlinkat unlink unlinkat
    rename renameat renameat2 readlink readlinkat getdents getdents64
    utime utimes futimesat utimensat utimensat_time64
    getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr
    flistxattr removexattr lremovexattr fremovexattr
    getxattrat setxattrat listxattrat removexattrat
    inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
    memfd_create chroot cachestat ioctl
"""
PROCESSES = """
    execve execveat fork vfork exit exit_group wait4 waitid waitpid
    getpid getppid gettid getpgid getpgrp setpgid getsid setsid
    getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
    getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
    setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
    setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32
    setgroups setgroups32 capget capset prctl
    getrlimit setrlimit ugetrlimit prlimit64 getrusage times getpriority setpriority
    ioprio_get ioprio_set sched_yield sched_getparam sched_setparam sched_getscheduler
    sched_setscheduler sched_getattr sched_setattr sched_getaffinity sched_setaffinity
    sched_get_priority_max sched_get_priority_min sched_rr_get_interval
    sched_rr_get_interval_time64 getcpu
    set_tid_address set_robust_list get_robust_list rseq restart_syscall
    futex futex_time64 futex_waitv futex_wake futex_wait futex_requeue
    ptrace process_vm_readv process_vm_writev pidfd_open pidfd_send_signal
    seccomp landlock_create_ruleset landlock_add_rule landlock_restrict_self
    uname sysinfo getrandom membarrier lsm_get_self_attr lsm_list_modules
"""
MEMORY = """
    brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages
    mlock mlock2 munlock mlockall munlockall get_mempolicy
    pkey_alloc pkey_free pkey_mprotect map_shadow_stack
"""
SIGNALS = """
    kill tkill tgkill rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending
    rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_sigqueueinfo rt_tgsigqueueinfo
    sigaction sigprocmask sigreturn sigpending sigsuspend signal sigaltstack
    signalfd signalfd4 pause alarm
"""
TIME = """
    time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64
    clock_nanosleep clock_nanosleep_time64 nanosleep adjtimex clock_adjtime clock_adjtime64
    getitimer setitimer timer_create timer_delete timer_getoverrun timer_gettime
    timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
    timerfd_gettime64 timerfd_settime timerfd_settime64
"""
EVENTS = """
    select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old
    epoll_pwait epoll_pwait2 eventfd eventfd2
    io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
"""
NETWORK = """
    socketpair bind connect listen accept accept4 getsockname getpeername
    getsockopt setsockopt shutdown send sendto sendmsg sendmmsg recv recvfrom recvmsg
    recvmmsg recvmmsg_time64 socketcall
"""
IPC = """
    pipe pipe2 ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64
    semctl shmget shmat shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedsend_time64
    mq_timedreceive mq_timedreceive_time64 mq_notify mq_getsetattr
"""
# Per architecture: thread-local storage and the x86 LDT; ARM's cache and TLS calls.
ARCH_SPECIFIC = {
    "x86_64": "arch_prctl modify_ldt set_thread_area get_thread_area",
    "aarch64": "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
}

# Allowed only with the capability that licenses them.
BY_CAPABILITY = {
    "CAP_SYS_ADMIN": """
        mount umount umount2 pivot_root setns unshare clone3 sethostname setdomainname
        fsopen fsconfig fsmount fspick move_mount open_tree mount_setattr
        fanotify_init name_to_handle_at quotactl quotactl_fd lookup_dcookie
        swapon swapoff syslog bpf perf_event_open
    """,
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_MODULE": "init_module finit_module delete_module",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise",
    "CAP_SYS_NICE": "mbind set_mempolicy set_mempolicy_home_node move_pages migrate_pages",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}
# Never allowed by the default profile, whatever the capabilities: kexec and
# the keyring (global kernel state), and attack surface nothing needs.
NEVER = """
    kexec_load kexec_file_load keyctl add_key request_key userfaultfd
    io_uring_setup io_uring_enter io_uring_register
    create_module get_kernel_syms query_module uselib sysfs _sysctl ustat nfsservctl
    vm86 vm86old afs_syscall tuxcall security putpmsg getpmsg
"""

# clone(2) flags that create namespaces; unshare(2) also takes CLONE_NEWTIME,
# whose bit clone(2) uses for the exit signal.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
CLONE_NAMESPACES = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                    | CLONE_NEWPID | CLONE_NEWNET)
AF_VSOCK = 40
# personality(2) values that only select an ABI or uname(2) flavour; the
# others (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weaken exploit defences.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # LINUX, LINUX32, UNAME26, both, query

ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def names(text: str) -> list[str]:
    return text.split()


def allowed(capabilities: Iterable[str], machine: str | None = None) -> list[str]:
    """Every call the profile allows outright, for a container with `capabilities`."""
    machine = machine or platform.machine()
    caps = set(capabilities)
    calls = set()
    for group in (FILES, PROCESSES, MEMORY, SIGNALS, TIME, EVENTS, NETWORK, IPC,
                  ARCH_SPECIFIC.get(machine, "")):
        calls.update(names(group))
    for capability, group in BY_CAPABILITY.items():
        if capability in caps:
            calls.update(names(group))
    return sorted(calls - set(names(NEVER)))


def default_profile(capabilities: Iterable[str], machine: str | None = None) -> dict:
    """The OCI `linux.seccomp` object for a container with `capabilities`."""
    machine = machine or platform.machine()
    caps = set(capabilities)
    rules: list[dict] = [{"names": allowed(caps, machine), "action": "SCMP_ACT_ALLOW"}]
    if "CAP_SYS_ADMIN" not in caps:
        # Threads and processes, yes; new namespaces, no (clone's flags are its
        # first argument). clone3 passes its flags in memory a filter cannot
        # read, so it reports ENOSYS: C libraries then fall back to clone.
        rules += [
            _rule("clone", [_masked(0, CLONE_NAMESPACES, 0)]),
            _rule("unshare", [_masked(0, CLONE_NAMESPACES | CLONE_NEWTIME, 0)]),
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        ]
    else:
        rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW"})
    # Any socket but AF_VSOCK, the channel from a virtual machine to its hypervisor.
    rules.append(_rule("socket", [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]))
    rules += [_rule("personality", [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}])
              for p in PERSONALITIES]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "architectures": ARCHITECTURES.get(machine, []),
        "syscalls": rules,
    }


def custom_profile(text: str, capabilities: Iterable[str], machine: str | None = None) -> dict:
    """A user's profile (`--security-opt seccomp=FILE`) as the OCI object crun reads.

    OCI profiles pass through. Profiles in Docker's format are evaluated as
    Docker would: `archMap` becomes `architectures`, and a rule applies only
    if its `includes` (capabilities, architectures) hold and its `excludes` do not.
    """
    machine = machine or platform.machine()
    profile = json.loads(text)
    caps = set(capabilities)
    arches = set(ARCHITECTURES.get(machine, []))
    result = {key: value for key, value in profile.items()
              if key in ("defaultAction", "defaultErrnoRet", "architectures", "flags",
                         "listenerPath", "listenerMetadata")}
    if "archMap" in profile and "architectures" not in profile:
        result["architectures"] = [a for entry in profile["archMap"] or []
                                   for a in [entry["architecture"], *entry.get("subArchitectures", [])]
                                   if a in arches]
    rules = []
    for rule in profile.get("syscalls") or []:
        if _applies(rule, caps, arches):
            rules.append({key: value for key, value in rule.items()
                          if key in ("names", "action", "errnoRet", "args")})
    result["syscalls"] = rules
    return result


def _applies(rule: dict, caps: set[str], arches: set[str]) -> bool:
    includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
    if not set(includes.get("caps") or []) <= caps:
        return False
    if includes.get("arches") and not set(includes["arches"]) & _short_arches(arches):
        return False
    if set(excludes.get("caps") or []) & caps:
        return False
    return not set(excludes.get("arches") or []) & _short_arches(arches)


def _short_arches(arches: set[str]) -> set[str]:
    """SCMP_ARCH_X86_64 -> amd64, as Docker's profiles name architectures in includes/excludes."""
    short = {"SCMP_ARCH_X86_64": "amd64", "SCMP_ARCH_X86": "386", "SCMP_ARCH_X32": "x32",
             "SCMP_ARCH_AARCH64": "arm64", "SCMP_ARCH_ARM": "arm"}
    return {short[a] for a in arches if a in short}


def _rule(name: str, args: list[dict]) -> dict:
    return {"names": [name], "action": "SCMP_ACT_ALLOW", "args": args}


def _masked(index: int, mask: int, value: int) -> dict:
    """Argument `index` ANDed with `mask` must equal `value`."""
    return {"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"}
