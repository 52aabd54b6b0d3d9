"""Online sessions with uploaded references: each distinct reference uploaded once (Files API)
and sent by URI, journaled so a later run reuses it, uploaded again when it expired or the
service forgot it; ``--inline-references`` keeps them inline. The real SDK on the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator
from imagegen.emulator.clock import ManualClock
from imagegen.errors import EXIT_OK

from .batch_helpers import Combos, Sleeper, make_jobs, new_session, run, settings

HOUR = 3600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(render="plain", clock=clock) as emulator:
        yield emulator


@pytest.fixture
def combos(tmp_path: Path) -> Combos:
    return Combos.make(tmp_path / "combos")


def sent_parts(emu: Emulator) -> list[dict[str, object]]:
    request = emu.last_request_json
    assert request is not None
    parts: list[dict[str, object]] = request["contents"][0]["parts"]
    return parts


def test_an_online_session_uploads_each_distinct_reference_once_and_sends_uris(
    tmp_path: Path, emu: Emulator, clock: ManualClock, combos: Combos
) -> None:
    journal = new_session(tmp_path, make_jobs(tmp_path, combos, prompts=3))
    with journal:
        result = run(journal, emu, settings(clock, Sleeper(clock)))
    assert result.exit_code == EXIT_OK and result.completed == 9
    assert emu.files.uploads == Combos.distinct  # 5 files, 4 distinct contents
    parts = sent_parts(emu)
    assert all("fileData" in p or "file_data" in p for p in parts[1:])
    assert not any("inlineData" in p or "inline_data" in p for p in parts)
    state = journal_mod.load(journal.sessions_dir, journal.session_id)
    assert len(state.uploads) == Combos.distinct  # journaled: a resume reuses them
    assert {r.size for r in state.uploads.values()} <= {
        Path(p).stat().st_size for refs in combos.refs.values() for p in refs
    }


def test_a_later_run_reuses_the_journaled_uploads(
    tmp_path: Path, emu: Emulator, clock: ManualClock, combos: Combos
) -> None:
    jobs = make_jobs(tmp_path, combos)
    journal = new_session(tmp_path, jobs)
    with journal:
        run(journal, emu, settings(clock, Sleeper(clock)))
        before = emu.files.uploads
        result = run(
            journal, emu, settings(clock, Sleeper(clock)), "retry", tuple(j.id for j in jobs)
        )
    assert result.exit_code == EXIT_OK
    assert emu.files.uploads == before  # nothing uploaded again


def test_references_that_expired_are_uploaded_again(
    tmp_path: Path, emu: Emulator, clock: ManualClock, combos: Combos
) -> None:
    jobs = make_jobs(tmp_path, combos)
    journal = new_session(tmp_path, jobs)
    with journal:
        run(journal, emu, settings(clock, Sleeper(clock)))
        old = dict(journal.state.uploads)
        clock.advance(47.5 * HOUR)  # under an hour left: not enough for a run
        result = run(
            journal, emu, settings(clock, Sleeper(clock)), "retry", tuple(j.id for j in jobs)
        )
    assert result.exit_code == EXIT_OK
    assert emu.files.uploads == 2 * Combos.distinct
    new = journal.state.uploads
    assert set(new) == set(old) and all(new[d].name != old[d].name for d in old)


def test_a_reference_the_service_forgot_is_uploaded_again_without_failing_the_job(
    tmp_path: Path, emu: Emulator, clock: ManualClock, combos: Combos
) -> None:
    jobs = make_jobs(tmp_path, combos)
    journal = new_session(tmp_path, jobs)
    with journal:
        run(journal, emu, settings(clock, Sleeper(clock)))
        for record in journal.state.uploads.values():
            emu.files.forget(record.name)  # the service lost them (the journal says alive)
        result = run(
            journal, emu, settings(clock, Sleeper(clock)), "retry", tuple(j.id for j in jobs)
        )
    assert result.exit_code == EXIT_OK and result.completed == 6
    assert emu.files.uploads == 2 * Combos.distinct
    for state in journal.state.jobs.values():
        assert [a.outcome for a in state.history] == ["completed", "completed"]


def test_a_file_lost_during_a_run_costs_one_403_and_one_upload(
    tmp_path: Path, emu: Emulator, clock: ManualClock, combos: Combos
) -> None:
    """Checked alive at the run's first use, then lost: the request that meets the 403 uploads
    it again and tries once more; the job completes on its first attempt."""
    jobs = make_jobs(tmp_path, combos, prompts=2)
    journal = new_session(tmp_path, jobs)
    lost: list[str] = []
    real = emu.files.resolve_uri

    def resolve(uri: str, at: float | None = None) -> tuple[bytes, str]:
        # The first time the second prompt's job meets combo A's photo: it is gone.
        if not lost and emu.generated:
            name = "files/" + uri.rsplit("/", 1)[-1]
            emu.files.forget(name)
            lost.append(name)
        return real(uri, at)

    emu.files.resolve_uri = resolve  # type: ignore[method-assign]
    with journal:
        result = run(journal, emu, settings(clock, Sleeper(clock)))
    assert result.exit_code == EXIT_OK and result.completed == 6
    assert lost and emu.files.uploads == Combos.distinct + 1
    for state in journal.state.jobs.values():
        assert [a.outcome for a in state.history] == ["completed"]


def test_inline_references_upload_nothing(
    tmp_path: Path, emu: Emulator, clock: ManualClock, combos: Combos
) -> None:
    journal = new_session(tmp_path, make_jobs(tmp_path, combos))
    with journal:
        result = run(journal, emu, settings(clock, Sleeper(clock), upload=False))
    assert result.exit_code == EXIT_OK
    assert emu.files.uploads == 0 and not journal.state.uploads
    parts = sent_parts(emu)
    assert all("inlineData" in p or "inline_data" in p for p in parts[1:])


def test_a_small_reference_one_request_sends_stays_inline(
    tmp_path: Path, emu: Emulator, clock: ManualClock
) -> None:
    """Cheaper inline than uploaded (the upload's own requests cost ~1.5 KB): not uploaded."""
    from PIL import Image

    small = tmp_path / "dot.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(small)
    assert small.stat().st_size < 1000
    combos = Combos(tmp_path, {"T": (str(small),)})
    journal = new_session(tmp_path, make_jobs(tmp_path, combos, prompts=1))
    with journal:
        result = run(journal, emu, settings(clock, Sleeper(clock)))
    assert result.exit_code == EXIT_OK and emu.files.uploads == 0
    assert "inlineData" in sent_parts(emu)[1] or "inline_data" in sent_parts(emu)[1]


def test_an_upload_that_fails_is_retried_by_the_pool_policy(
    tmp_path: Path, emu: Emulator, clock: ManualClock, combos: Combos
) -> None:
    """A 503 on a reference's upload is the attempt's failure: the pool waits and tries
    again, as for a 503 on the call itself; nothing was paid."""
    emu.files.fail_uploads(1, code=503)
    sleep = Sleeper(clock)
    journal = new_session(tmp_path, make_jobs(tmp_path, combos, prompts=1))
    with journal:
        result = run(journal, emu, settings(clock, sleep))
    assert result.exit_code == EXIT_OK and result.completed == 3
    histories = sorted([a.outcome for a in js.history] for js in journal.state.jobs.values())
    assert histories == [["completed"], ["completed"], ["server_error", "completed"]]
    assert 15.0 in sleep.waits  # the policy's wait after a server error, not a real one
    assert emu.files.uploads == Combos.distinct and emu.files.failed_uploads == 1


def test_an_invalid_key_on_upload_stops_the_run_in_one_line(
    tmp_path: Path, clock: ManualClock, combos: Combos
) -> None:
    from imagegen.errors import EXIT_STOPPED

    with Emulator(render="plain", clock=clock, expected_key="another-key") as emu:
        journal = new_session(tmp_path, make_jobs(tmp_path, combos, prompts=1))
        with journal:
            result = run(journal, emu, settings(clock, Sleeper(clock)))
    assert result.exit_code == EXIT_STOPPED
    assert result.stop_reason is not None and "API key not valid" in result.stop_reason
    assert {js.status for js in journal.state.jobs.values()} == {"pending"}
