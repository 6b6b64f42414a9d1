"""The `face-gcn` entry point, run as a user would: in a fresh process."""


def test_no_subcommand_prints_usage_and_fails(run_main):
    result = run_main()
    assert result.returncode == 2
    assert "usage: face-gcn SUBCOMMAND" in result.stdout


def test_unknown_subcommand_is_reported(run_main):
    result = run_main("no-such-job")
    assert result.returncode == 2
    assert "unknown subcommand 'no-such-job'" in result.stderr


def test_info_reports_versions_op_and_model(tmp_path, run_main):
    result = run_main("info", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip()
                and not line.startswith(("rasterizer", "morphable")))
    import tensorflow as tf
    assert rows["tensorflow"].strip() == tf.__version__
    assert "rasterizer op" in result.stdout
    assert "built-in demo model" in result.stdout
    assert "loads: 3643 vertices" in result.stdout
    result = run_main("info", "--morphable_model", "/some/bfm.npz", cache=tmp_path)
    assert "/some/bfm.npz (from flag)" in result.stdout
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(
        "face-gcn info: error: the morphable model cannot be used (/some/bfm.npz (from flag)): ")


def test_subcommand_help_lists_its_own_flags(run_main):
    result = run_main("convert-bfm", "--help")
    assert result.returncode == 0
    assert "--bfm_front_mat" in result.stdout and "--out" in result.stdout
    assert result.stdout.lstrip().startswith("USAGE: face-gcn convert-bfm [flags]")
    result = run_main("fit", "--help")
    assert result.returncode == 0 and result.stdout.lstrip().startswith("USAGE: face-gcn fit IMAGE_OR_FOLDER... [flags]")
    assert "--refine_steps" in result.stdout and "--regressor" in result.stdout
