"""`precache docs import` and `precache docs list`: a folder in, a bad file named and skipped, --prune."""

from cli import main


def test_a_folder_is_imported_a_bad_file_is_named_and_skipped_and_prune_removes_the_rest(runner, tmp_path):
    help_center = tmp_path / "help"
    (help_center / "billing").mkdir(parents=True)
    (help_center / "billing" / "refunds.md").write_text("# Refunds\n\nAsk for a refund within 30 days.")
    (help_center / "shipping.html").write_text("<h1>Shipping</h1><p>Standard shipping takes 3 days.</p>")
    (help_center / "broken.txt").write_bytes(b"\xff\xfe\x00 not text")
    result = runner.invoke(main, ["docs", "import", str(help_center)])
    assert result.exit_code == 1
    assert "skipped broken.txt: not UTF-8 text" in result.output
    assert "2 added, 0 updated, 0 unchanged, 0 removed, 1 skipped; 2 passages written" in result.output
    listed = runner.invoke(main, ["docs", "list"]).output.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["billing/refunds.md", "1 passages"],
                                                       ["shipping.html", "1 passages"]]
    (help_center / "broken.txt").unlink()
    (help_center / "shipping.html").unlink()
    again = runner.invoke(main, ["docs", "import", "--prune", str(help_center)])
    assert again.exit_code == 0, again.output
    assert "0 added, 0 updated, 1 unchanged, 1 removed, 0 skipped" in again.output
    assert runner.invoke(main, ["docs", "list"]).output.startswith("billing/refunds.md\t")
    assert runner.invoke(main, ["docs", "list", "--tenant", "acme"]).output == ""
