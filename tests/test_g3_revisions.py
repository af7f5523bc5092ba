"""A provider's revision: changed when rows the index held change, never by an append (both backends)."""
from __future__ import annotations

import shutil

from sisock.g3.scanner import Scanner
from sisock.g3.writer import Archive, Provider
from tests.g3_support import END, PROVIDERS, archive_dir, make_index, small_archive

ALL = [p.description for p in PROVIDERS]


def _setup(g3_env, end=END - 300):
    archive = small_archive(end=end)
    paths = archive.write(archive_dir(g3_env))
    index = make_index(g3_env)
    scanner = Scanner(index, archive_dir(g3_env))
    scanner.scan_once()
    return archive, paths, index, scanner


def test_every_provider_has_a_revision_and_an_append_keeps_it(g3_env):
    archive, paths, index, scanner = _setup(g3_env)
    before, generation = index.revisions(ALL), index.generation()
    assert set(before) == set(ALL) and len(set(before.values())) == len(ALL)
    grown = Archive(archive.providers, archive.start, END, file_seconds=600, gaps=archive.gaps)
    grown.write_file(paths[-1], END - 300, END, append=True)
    assert scanner.scan_once().read == 1
    assert index.generation() > generation, "the append changed the index"
    assert index.revisions(ALL) == before, "an append after the newest time revises nothing"


def test_a_new_file_after_the_newest_time_keeps_it(g3_env):
    archive, _, index, scanner = _setup(g3_env)
    before = index.revisions(ALL)
    later = Archive(archive.providers, END - 300, END, file_seconds=600)
    later.write(archive_dir(g3_env))
    assert scanner.scan_once().read == 1
    assert index.revisions(ALL) == before


def test_a_file_rewritten_removed_or_copied_in_late_revises_its_providers(g3_env):
    archive, paths, index, scanner = _setup(g3_env)
    first = index.revisions(ALL)
    # rewritten in place (other bytes, same name): read again from its start
    other = Archive(archive.providers, archive.start, archive.end, file_seconds=600)  # without the gap
    other.write_file(paths[1], END - 1200, END - 600)
    assert scanner.scan_once().read == 1
    second = index.revisions(ALL)
    assert all(second[d] != first[d] for d in ALL)
    # removed
    kept = paths[0].read_bytes()
    paths[0].unlink()
    assert scanner.scan_once().removed == 1
    third = index.revisions(ALL)
    assert all(third[d] != second[d] for d in ALL)
    # copied in late: frames before the newest indexed time
    late = paths[0].with_name("late.g3")
    late.write_bytes(kept)
    assert scanner.scan_once().read == 1
    assert all(index.revisions(ALL)[d] != third[d] for d in ALL)


def test_a_new_provider_gets_a_revision_and_the_others_keep_theirs(g3_env):
    archive, _, index, scanner = _setup(g3_env)
    before = index.revisions(ALL)
    extra = Archive([Provider("observatory.new.feeds.x", PROVIDERS[1].blocks)], END - 300, END,
                    file_seconds=600)
    folder = archive_dir(g3_env) / "extra"
    extra.write(folder)
    scanner.scan_once()
    after = index.revisions(ALL + ["observatory.new.feeds.x"])
    assert {d: after[d] for d in ALL} == before and "observatory.new.feeds.x" in after
    shutil.rmtree(folder)
    scanner.scan_once()
    assert index.revisions(["observatory.new.feeds.x"])["observatory.new.feeds.x"] != after["observatory.new.feeds.x"]
