"""The CLI moves a broken call on to the next controller with the same request id,
and says "outcome unknown" (exit 3) rather than guessing (cli/retry.py, pure)."""
from __future__ import annotations

import grpc
import pytest

from cli import main as cli_main
from cli.options import CliError, OutcomeUnknownError
from cli.parser import build_parser
from cli.retry import broken, call_with_retry
from proto.errors import ANSWERED, OUTCOME_UNKNOWN_EXIT


def rpc_error(code: grpc.StatusCode, details: str, answered: bool = False) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata(*ANSWERED) if answered else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=details)


def args(*argv: str):
    return build_parser().parse_args(["--controller", "unix:///a.sock,unix:///b.sock", *argv])


class Controllers:
    """Answers each try with the next outcome: an exception to raise or an exit code."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.tries: list[tuple[str, str]] = []

    def attempt(self, parsed):
        async def call(address: str) -> int:
            self.tries.append((address, getattr(parsed, "request_id", "")))
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return call


async def test_a_broken_run_goes_to_the_next_controller_with_the_same_request_id():
    parsed = args("run", "--name", "c1", "busybox")
    controllers = Controllers(rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed"), 0)
    assert await call_with_retry(parsed, controllers.attempt(parsed)) == 0
    (first, id1), (second, id2) = controllers.tries
    assert (first, second) == ("unix:///a.sock", "unix:///b.sock")
    assert id1 == id2 and len(id1) == 32


async def test_a_given_request_id_is_kept_and_a_stream_removed_counts_as_broken():
    parsed = args("rm", "--request-id", "my-request-1", "c1")
    controllers = Controllers(rpc_error(grpc.StatusCode.UNKNOWN, "Stream removed"), 0)
    assert await call_with_retry(parsed, controllers.attempt(parsed)) == 0
    assert [request_id for _, request_id in controllers.tries] == ["my-request-1"] * 2


async def test_a_refusal_is_not_retried():
    parsed = args("run", "--name", "c1", "busybox")
    controllers = Controllers(rpc_error(grpc.StatusCode.ALREADY_EXISTS, "container 'c1' already exists"))
    with pytest.raises(CliError, match="already exists") as err:
        await call_with_retry(parsed, controllers.attempt(parsed))
    assert not isinstance(err.value, OutcomeUnknownError) and len(controllers.tries) == 1
    assert not broken(rpc_error(grpc.StatusCode.UNKNOWN, "something the controller said"))
    # A controller's own UNAVAILABLE (its etcd is gone) is an answer, not a break: no retry.
    etcd_gone = Controllers(rpc_error(grpc.StatusCode.UNAVAILABLE, "etcd at 10.0.0.5:2379 is unreachable"))
    with pytest.raises(CliError, match="etcd at"):
        await call_with_retry(parsed, etcd_gone.attempt(parsed))
    assert len(etcd_gone.tries) == 1
    # Even when its words quote a transport error (etcd's own connection refused).
    quoting = Controllers(rpc_error(grpc.StatusCode.UNAVAILABLE, "etcd at https://10.0.0.5:2379 is unreachable: "
                                    "failed to connect to all addresses; Connection refused", answered=True))
    with pytest.raises(CliError, match="etcd at"):
        await call_with_retry(parsed, quoting.attempt(parsed))
    assert len(quoting.tries) == 1 and broken(rpc_error(grpc.StatusCode.UNAVAILABLE, "Connection refused"))


async def test_no_answer_in_time_is_an_unknown_outcome_naming_how_to_find_out():
    parsed = args("run", "--name", "c1", "busybox")
    said = "the outcome is unknown: host 'h1' has not confirmed that container 'c1' started within 30s"
    with pytest.raises(OutcomeUnknownError) as err:
        await call_with_retry(parsed, Controllers(rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, said))
                              .attempt(parsed))
    assert str(err.value).startswith(said) and f"--request-id {parsed.request_id}" in str(err.value)
    # Every controller keeps breaking: unknown too, once the retries run out.
    parsed = args("start", "c1")
    always = Controllers(*[rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed")] * 50)
    with pytest.raises(OutcomeUnknownError, match=r"no controller answered within 1s.*vxmesh inspect c1"):
        await call_with_retry(parsed, always.attempt(parsed), retry_seconds=1.0)
    assert len(always.tries) >= 2


async def test_exec_is_not_retried_and_reads_carry_no_request_id():
    parsed = args("exec", "c1", "--", "true")
    controllers = Controllers(rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed"))
    with pytest.raises(CliError, match="Socket closed"):
        await call_with_retry(parsed, controllers.attempt(parsed))
    parsed = args("ps")
    controllers = Controllers(rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed"), 0)
    assert await call_with_retry(parsed, controllers.attempt(parsed)) == 0
    assert controllers.tries == [("unix:///a.sock", ""), ("unix:///b.sock", "")]


def test_an_unknown_outcome_exits_3_and_a_refusal_1(monkeypatch, capsys):
    async def unknown(*_):
        raise OutcomeUnknownError("the outcome is unknown: test")

    async def refused(*_):
        raise CliError("container 'c1' already exists")

    monkeypatch.setattr(cli_main, "user_command", unknown)
    assert cli_main.main(["--controller", "unix:///a.sock", "ps"]) == OUTCOME_UNKNOWN_EXIT == 3
    monkeypatch.setattr(cli_main, "user_command", refused)
    assert cli_main.main(["--controller", "unix:///a.sock", "ps"]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [("network", "create", "red"), ("network", "rm", "red"),
                                  ("network", "connect", "red", "c1"), ("network", "disconnect", "red", "c1"),
                                  ("network", "prune", "-f")])
async def test_network_changes_go_to_the_next_controller_with_the_same_request_id(argv):
    parsed = args(*argv)
    controllers = Controllers(rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed"), 0)
    assert await call_with_retry(parsed, controllers.attempt(parsed)) == 0
    (first, id1), (second, id2) = controllers.tries
    assert (first, second) == ("unix:///a.sock", "unix:///b.sock")
    assert id1 == id2 and len(id1) == 32


async def test_a_network_change_without_an_answer_says_how_to_check():
    parsed = args("network", "connect", "--request-id", "conn-0001", "red", "c1")
    always = Controllers(*[rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed")] * 50)
    with pytest.raises(OutcomeUnknownError, match=r"vxmesh inspect c1`, or repeat .* --request-id conn-0001"):
        await call_with_retry(parsed, always.attempt(parsed), retry_seconds=1.0)
    parsed = args("network", "create", "red")
    always = Controllers(*[rpc_error(grpc.StatusCode.UNAVAILABLE, "Socket closed")] * 50)
    with pytest.raises(OutcomeUnknownError, match=r"vxmesh network inspect red`"):
        await call_with_retry(parsed, always.attempt(parsed), retry_seconds=1.0)
