"""Output folders: one run at a time, the user's files and other photos' outputs never replaced,
our own outputs never listed as photos."""

import json
import os
import subprocess
import sys

import pytest

from face_gcn import output_folder
from face_gcn.data import prepare


def files_for(name):
    return [f"{name}.json", f"sub/{name}.png"]


def test_names_skip_the_users_files_and_other_photos_outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "me.json").write_text("the user's own notes")
    with output_folder.OutputFolder(str(out), "test") as folder:
        first = folder.claim("/photos/me.jpg", "me", files_for)
        folder.record(files_for(first), "/photos/me.jpg")
        again = folder.claim("/photos/me.jpg", "me", files_for)  # taken by this run already
        assert (first, again) == ("me_2", "me_3")
        for name in (first, again):
            for relative in files_for(name):
                (out / relative).parent.mkdir(exist_ok=True)
                (out / relative).write_text(name)
    assert (out / "me.json").read_text() == "the user's own notes"

    record = json.loads((out / output_folder.RECORD_NAME).read_text())
    assert record["files"] == {"me_2.json": "/photos/me.jpg", "sub/me_2.png": "/photos/me.jpg"}
    with output_folder.OutputFolder(str(out), "test") as folder:
        # a later run: the same photo replaces its own outputs; another photo of that name does not
        assert folder.claim("/photos/me.jpg", "me", files_for) == "me_2"
        # me_3's files exist but were never recorded: they count as the user's
        assert folder.claim("/elsewhere/me.jpg", "me", files_for) == "me_4"
        folder.check_writable(["me_2.json"], "/photos/me.jpg")
        with pytest.raises(output_folder.OutputFolderError, match="not written by face-gcn"):
            folder.check_writable(["me.json"], "/photos/me.jpg")
        with pytest.raises(output_folder.OutputFolderError, match="another photo's output"):
            folder.check_writable(["me_2.json"], "/elsewhere/me.jpg")


def test_one_run_at_a_time_and_the_lock_dies_with_its_process(tmp_path):
    out = str(tmp_path / "out")
    with output_folder.OutputFolder(out, "face-gcn fit"):
        with pytest.raises(output_folder.OutputFolderError, match=r"in use by another face-gcn run \(pid \d+, face-gcn fit\)"):
            with output_folder.OutputFolder(out, "face-gcn reconstruct"):
                pass
    with output_folder.OutputFolder(out, "face-gcn reconstruct"):  # released on exit
        pass
    # a run killed while holding the lock leaves no stale lock behind
    killed = subprocess.run([sys.executable, "-c", (
        "import os, sys; from face_gcn import output_folder\n"
        f"output_folder.OutputFolder({out!r}, 'killed').__enter__(); os._exit(9)")], check=False)
    assert killed.returncode == 9
    with output_folder.OutputFolder(out, "next"):
        pass


def test_input_folders_and_files_are_refused(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "me.jpg").write_bytes(b"x")
    for inputs in ([str(photos)], [str(photos / "me.jpg")]):
        with pytest.raises(output_folder.OutputFolderError, match="is the folder of the input photos"):
            output_folder.OutputFolder(str(photos), "test", inputs=inputs)
    output_folder.OutputFolder(str(photos / "results"), "test", inputs=[str(photos)])  # inside is fine
    with pytest.raises(output_folder.OutputFolderError, match="is a file"):
        output_folder.OutputFolder(str(photos / "me.jpg"), "test")


def test_a_damaged_record_is_refused_not_ignored(tmp_path):
    (tmp_path / output_folder.RECORD_NAME).write_text("{not json")
    with pytest.raises(output_folder.OutputFolderError, match="damaged"):
        with output_folder.OutputFolder(str(tmp_path), "test"):
            pass


def test_listing_leaves_out_recorded_outputs_at_any_depth(tmp_path):
    photos = tmp_path / "photos"
    (photos / "results" / "coarse").mkdir(parents=True)
    for path in ("me.png", "results/me.input.png", "results/coarse/me.render.png", "results/user.png"):
        (photos / path).write_bytes(b"x")
    with output_folder.OutputFolder(str(photos / "results"), "test") as folder:
        folder.record(["me.input.png", "coarse/me.render.png"], str(photos / "me.png"))
    assert prepare.list_inputs(str(photos)) == [str(photos / "me.png"), str(photos / "results" / "user.png")]
    # listing a folder below the output folder still knows its outputs
    with pytest.raises(ValueError, match=r"\(1 face-gcn outputs left out\)"):
        prepare.list_inputs(str(photos / "results" / "coarse"))
    os.remove(photos / "results" / output_folder.RECORD_NAME)
    assert len(prepare.list_inputs(str(photos))) == 4
