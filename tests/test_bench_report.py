"""docs/benchmarks.md keeps the sections a bench run did not measure (bench/report.py)."""

from bench.report import keeping_other_sections, sections


def test_a_rewrite_keeps_the_sections_it_did_not_measure(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\nold intro\n\n## Targets\n\nold\n\n## Beside PostGraphile 5\n\npeer\n\n"
                    "## Bulk import and export\n\nbulk\n\n## Explorer: Lighthouse\n\nscores\n")  # fmt: skip
    written = keeping_other_sections("# Benchmarks\n\nnew intro\n\n## Targets\n\nnew\n", path)
    assert list(sections(written)) == [
        "## Targets", "## Beside PostGraphile 5", "## Bulk import and export", "## Explorer: Lighthouse"
    ]  # fmt: skip
    assert "new intro" in written
    assert "old" not in written.replace("old intro", "")
    assert sections(written)["## Explorer: Lighthouse"] == "## Explorer: Lighthouse\n\nscores\n"


def test_a_section_measured_again_is_replaced_not_repeated(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\n## Bulk import and export\n\n2,000 rows/s\n")
    written = keeping_other_sections("# Benchmarks\n\n## Bulk import and export\n\n50,000 rows/s\n", path)
    assert written.count("## Bulk import and export") == 1
    assert "50,000 rows/s" in written
    assert "2,000" not in written
