"""agent.oci.seccomp: what the default profile allows, blocks and gates on capabilities."""
from __future__ import annotations

import errno
import json

import pytest

from agent.oci import seccomp
from proto import capabilities

DEFAULT_CAPS = capabilities.resolve()
ALL_CAPS = capabilities.resolve(privileged=True)
# What the profile must refuse a default container, each a way out of it.
BLOCKED = ["kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
           "open_by_handle_at", "name_to_handle_at", "keyctl", "add_key", "request_key", "bpf",
           "perf_event_open", "mount", "umount", "umount2", "pivot_root", "setns", "unshare",
           "clone3", "fsopen", "fsmount", "move_mount", "open_tree", "mount_setattr", "swapon",
           "reboot", "iopl", "ioperm", "acct", "settimeofday", "clock_settime", "syslog",
           "userfaultfd", "io_uring_setup", "quotactl", "lookup_dcookie", "vm86", "kcmp",
           "pidfd_getfd", "mbind", "set_mempolicy", "move_pages", "sethostname", "fanotify_init",
           "create_module", "uselib", "_sysctl"]
NEEDED = ["read", "write", "openat", "close", "execve", "exit_group", "mmap", "futex", "wait4",
          "rt_sigaction", "socketpair", "bind", "connect", "sendto", "recvfrom", "epoll_wait",
          "pipe2", "getdents64", "statx", "fork", "vfork", "setuid", "capset", "chroot", "mknod",
          "ptrace", "arch_prctl", "getrandom", "clock_nanosleep", "prctl", "seccomp"]


def rules_for(profile: dict, name: str) -> list[dict]:
    return [rule for rule in profile["syscalls"] if name in rule["names"]]


def allowed_outright(profile: dict) -> set[str]:
    return {name for rule in profile["syscalls"]
            if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
            for name in rule["names"]}


def test_the_default_profile_is_an_allow_list_that_answers_eperm():
    profile = seccomp.default_profile(DEFAULT_CAPS, "x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == errno.EPERM
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    json.dumps(profile)  # it goes into config.json as is


@pytest.mark.parametrize("name", BLOCKED)
def test_a_default_container_may_not_make_calls_that_reach_the_host(name):
    profile = seccomp.default_profile(DEFAULT_CAPS, "x86_64")
    assert name not in allowed_outright(profile)


@pytest.mark.parametrize("name", NEEDED)
def test_a_default_container_may_make_the_calls_programs_need(name):
    assert name in allowed_outright(seccomp.default_profile(DEFAULT_CAPS, "x86_64"))


def test_clone_and_unshare_may_not_create_namespaces_without_sys_admin():
    profile = seccomp.default_profile(DEFAULT_CAPS, "x86_64")
    (clone,) = rules_for(profile, "clone")
    (condition,) = clone["args"]
    assert condition["op"] == "SCMP_CMP_MASKED_EQ" and condition["valueTwo"] == 0
    for flag in (seccomp.CLONE_NEWUSER, seccomp.CLONE_NEWNS, seccomp.CLONE_NEWNET,
                 seccomp.CLONE_NEWPID, seccomp.CLONE_NEWCGROUP):
        assert condition["value"] & flag
    # Threads and plain forks pass: their flags share no bit with the mask.
    thread_flags = 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    assert thread_flags & condition["value"] == 0
    (unshare,) = rules_for(profile, "unshare")
    assert unshare["args"][0]["value"] & seccomp.CLONE_NEWUSER
    assert unshare["args"][0]["value"] & seccomp.CLONE_NEWTIME
    (clone3,) = rules_for(profile, "clone3")
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == errno.ENOSYS


def test_capabilities_open_the_calls_they_license():
    admin = seccomp.default_profile(capabilities.resolve(add=["SYS_ADMIN"]), "x86_64")
    for name in ("mount", "umount2", "pivot_root", "setns", "unshare", "clone", "clone3", "bpf"):
        assert name in allowed_outright(admin), name
    assert not any(rule.get("args") for rule in rules_for(admin, "clone"))
    module = allowed_outright(seccomp.default_profile(capabilities.resolve(add=["SYS_MODULE"])))
    assert {"init_module", "finit_module", "delete_module"} <= module
    assert "open_by_handle_at" in allowed_outright(
        seccomp.default_profile(capabilities.resolve(add=["DAC_READ_SEARCH"])))


def test_some_calls_stay_blocked_whatever_the_capabilities():
    everything = allowed_outright(seccomp.default_profile(ALL_CAPS, "x86_64"))
    for name in ("kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key",
                 "userfaultfd", "io_uring_setup"):
        assert name not in everything
    grouped = {n for text in (seccomp.FILES, seccomp.PROCESSES, seccomp.MEMORY, seccomp.SIGNALS,
                              seccomp.TIME, seccomp.EVENTS, seccomp.NETWORK, seccomp.IPC,
                              *seccomp.BY_CAPABILITY.values()) for n in seccomp.names(text)}
    assert not grouped & set(seccomp.names(seccomp.NEVER))


def test_sockets_but_vsock_and_only_harmless_personalities():
    profile = seccomp.default_profile(DEFAULT_CAPS, "x86_64")
    (socket,) = rules_for(profile, "socket")
    assert socket["args"] == [{"index": 0, "value": seccomp.AF_VSOCK, "op": "SCMP_CMP_NE"}]
    values = {rule["args"][0]["value"] for rule in rules_for(profile, "personality")}
    assert 0x0040000 not in values  # ADDR_NO_RANDOMIZE
    assert 0 in values and 0xFFFFFFFF in values


def test_architecture_specific_calls():
    assert "arch_prctl" in seccomp.allowed(DEFAULT_CAPS, "x86_64")
    arm = seccomp.default_profile(DEFAULT_CAPS, "aarch64")
    assert "arch_prctl" not in allowed_outright(arm) and "set_tls" in allowed_outright(arm)
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]


def test_a_profile_in_dockers_format_is_evaluated_for_the_container():
    docker_style = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        ],
    }
    profile = seccomp.custom_profile(json.dumps(docker_style), DEFAULT_CAPS, "x86_64")
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert [rule["names"] for rule in profile["syscalls"]] == [["read"], ["arch_prctl"]]
    assert all(set(rule) <= {"names", "action", "errnoRet", "args"} for rule in profile["syscalls"])
    oci_style = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    assert seccomp.custom_profile(json.dumps(oci_style), DEFAULT_CAPS, "x86_64") == oci_style
