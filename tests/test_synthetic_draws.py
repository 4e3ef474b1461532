"""The simulator's knobs, refusals, ids and sensor sampling, checked against what each one
promises: every headroom knob reaches the sensors it belongs to (and no other), a knob and the
argument of the same name are one setting, the negative control cannot be asked of the regime
that does not have it (and its report names what it replaced), ids tell draws of other
durations apart, imu_clean draws come in the caller's order, and the IMU's anti-alias bin mean
is exact for any number of fine points per sample."""
import numpy as np
import pytest

from dcatkit.data.synthetic import HEADROOM_KNOBS, _bin_mean, make_synthetic, sample_ids

SMALL = dict(n_frames=4, frame_size=16, audio_rate=2000, duration=1.0)

# The sensors each knob acts on (module docstring and HEADROOM_KNOBS' comments): timing jitter
# moves the shared events, so all three; every other knob one sensor only.
KNOB_SENSORS = {
    "imu_noise": {"imu"}, "head_motion": {"imu"}, "subject_angle": {"imu"}, "sample_angle": {"imu"},
    "video_noise": {"video"}, "object_mix": {"video"}, "size_jitter": {"video"},
    "tone_spread": {"audio"}, "room_hum": {"audio"},
    "timing_jitter": {"imu", "video", "audio"},
}


def _draw(**kw):
    return make_synthetic(48, n_subjects=4, seed=6, **SMALL, **kw)


@pytest.fixture(scope="module")
def default_draw():
    return _draw()


@pytest.mark.parametrize("knob", sorted(KNOB_SENSORS))
def test_every_knob_reaches_its_sensors_and_no_other(knob, default_draw):
    assert set(KNOB_SENSORS) == set(HEADROOM_KNOBS)                    # every knob is checked here
    other = _draw(knobs={knob: HEADROOM_KNOBS[knob] * 0.5 + 0.1})
    assert np.array_equal(other["labels"], default_draw["labels"])
    assert np.array_equal(other["subjects"], default_draw["subjects"])
    for m in ("imu", "video", "audio"):
        same = np.array_equal(other["arrays"][m], default_draw["arrays"][m])
        assert same == (m not in KNOB_SENSORS[knob]), (knob, m)


@pytest.mark.parametrize("name, value", [("imu_noise", 0.3), ("video_noise", 0.2)])
def test_a_noise_knob_and_the_argument_of_its_name_are_one_setting(name, value):
    by_knob, by_arg = _draw(knobs={name: value}), _draw(**{name: value})
    for m in ("imu", "video", "audio"):
        assert np.array_equal(by_knob["arrays"][m], by_arg["arrays"][m]), m


def test_imu_noise_knob_is_the_std_of_the_imu_minus_its_clean_copy():
    for level in (0.05, 0.4):
        d = make_synthetic(200, seed=1, modalities=("imu", "imu_clean"), knobs={"imu_noise": level}, **SMALL)
        noise = (d["arrays"]["imu"] - d["arrays"]["imu_clean"]).astype(float)
        assert abs(noise.std() / level - 1) < 0.02 and abs(noise.mean()) < 0.03 * level


def test_room_hum_is_a_steady_tone_of_the_knobs_amplitude():
    """The hum is added after the room: two draws that differ by room_hum only differ by
    0.5 * (difference of the knob) * sin(one frequency per subject): its amplitude is that,
    and each recording's difference has one spectral line."""
    quiet = make_synthetic(16, n_subjects=3, seed=2, modalities=("audio",), knobs={"room_hum": 0.0}, **SMALL)
    loud = make_synthetic(16, n_subjects=3, seed=2, modalities=("audio",), knobs={"room_hum": 1.0}, **SMALL)
    diff = loud["arrays"]["audio"].astype(float) - quiet["arrays"]["audio"].astype(float)
    assert np.allclose(np.abs(diff).max(axis=1), 0.5, atol=0.02)         # 0.5 * 1.0, any phase
    power = np.abs(np.fft.rfft(diff, axis=1)) ** 2
    top = np.sort(power, axis=1)[:, ::-1]
    assert ((top[:, :6].sum(1)) / power.sum(1) > 0.9).all()             # one line (leaking into its neighbours)
    # the same subject hums at the same frequency in every recording
    peak = power.argmax(axis=1)
    for s in set(quiet["subjects"].tolist()):
        mine = peak[quiet["subjects"] == s]
        assert mine.max() - mine.min() <= 1, (s, mine)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_subjects=0), "n_samples and n_subjects must be >= 1"),
    (dict(regime="ambiguous", control="negative"), "belong to regime='headroom'"),
    (dict(regime="ambiguous", control="negative", modalities=("imu", "video")), "belong to regime='headroom'"),
])
def test_settings_without_a_meaning_are_refused(kwargs, message):
    """No subjects, or the negative control asked of the 'ambiguous' regime (which has none: it
    would hand back that regime's plain, label-bearing IMU tagged as a control)."""
    with pytest.raises(ValueError, match=message):
        make_synthetic(**{"n_samples": 8, **kwargs})


def test_ids_tell_apart_draws_of_other_durations():
    """Draws of 1.0 s and 1.5 s (or 2.0 and 2.5 s) are other recordings: no id in common; and
    make_synthetic's ids are sample_ids' for its own arguments."""
    for a, b in ((1.0, 1.5), (2.0, 2.5), (0.5, 0.75)):
        assert not set(sample_ids("headroom", 0, 12, 3, a)) & set(sample_ids("headroom", 0, 12, 3, b)), (a, b)
    d = make_synthetic(12, n_subjects=3, seed=4, modalities=("imu",), duration=1.5)
    assert d["ids"] == sample_ids("headroom", 4, 12, 3, 1.5)


@pytest.mark.parametrize("F, n", [(10, 4), (256, 20), (7, 7), (9, 2), (5, 3)])
def test_bin_mean_is_the_mean_over_equal_bins_for_any_ratio(F, n):
    """Each of x's F points covers 1/F of the time; bin j covers [j/n, (j+1)/n). Repeating
    every point n times and averaging consecutive runs of F gives the exact bin means."""
    x = np.random.default_rng(F * 100 + n).normal(size=(3, 2, F))
    want = np.repeat(x, n, axis=-1).reshape(3, 2, n, F).mean(-1)
    assert np.allclose(_bin_mean(x, n), want, atol=1e-12)


def test_imu_clean_draws_come_in_the_callers_order():
    for mods in (("imu", "imu_clean"), ("imu_clean", "imu"), ("video", "imu_clean", "imu")):
        d = make_synthetic(8, n_subjects=2, seed=0, modalities=mods, **SMALL)
        assert tuple(d["arrays"]) == mods


def test_control_report_names_each_replaced_modality_and_refuses_other_controls():
    """What load() records for the negative control: exactly the modalities it took from the
    independent draw, in the caller's order (imu_clean too), none of the others."""
    from dcatkit.data.synthetic import control_report

    assert control_report("negative", ("imu_clean", "video"))["modality"] == ["imu_clean"]
    assert control_report("negative", ("video", "imu", "imu_clean"))["modality"] == ["imu", "imu_clean"]
    with pytest.raises(ValueError, match="unknown control 'positive'"):
        control_report("positive", ("imu",))


def test_event_sizes_are_the_largest_deflection_of_each_noise_free_recording():
    """``event_sizes`` against a plain loop over the same recordings drawn without head motion: per
    recording and time step the length of the 3-axis acceleration minus its time mean, its largest
    value; the sizes lie within the class's nominal amplitude times the largest subject (1.25),
    recording (1.0) and event (1.2) factors; ``noise`` is the sd of the noisy imu (argument or knob);
    video options change nothing."""
    from dcatkit.data.synthetic import MOTION_HEADROOM, event_sizes

    got = event_sizes(24, seed=3, n_subjects=4, duration=1.0)
    d = make_synthetic(24, n_subjects=4, seed=3, duration=1.0, modalities=("imu", "imu_clean"),
                       knobs={"head_motion": 0.0})
    acc = d["arrays"]["imu_clean"][:, :3].astype(float)
    want = []
    for x in acc:                                                  # (3, L) one recording
        lengths = [np.sqrt(sum((x[a, t] - x[a].mean()) ** 2 for a in range(3))) for t in range(x.shape[1])]
        want.append(max(lengths))
    np.testing.assert_allclose(got["peak"], want, rtol=1e-6)
    assert np.array_equal(got["labels"], d["labels"]) and got["classes"] == d["classes"]
    nominal = np.array([MOTION_HEADROOM[c][-1] for c in d["classes"]])[d["labels"]]
    assert (got["peak"] > 0).all() and (got["peak"] <= nominal * 1.25 * 1.0 * 1.2 * 1.05).all()
    assert got["noise"] == HEADROOM_KNOBS["imu_noise"]
    assert event_sizes(8, seed=3, imu_noise=0.3)["noise"] == 0.3
    assert event_sizes(8, seed=3, knobs={"imu_noise": 0.2})["noise"] == 0.2
    np.testing.assert_array_equal(event_sizes(8, seed=3, frame_size=16, n_frames=4)["peak"], event_sizes(8, seed=3)["peak"])


def test_each_class_tone_is_above_the_previous_classs():
    """Notebook 01 says each class's tone is pitched above the previous class's: CLASS_TONES holds
    the tones the audio is rendered at (``_TONE``), by class name in class order, and they rise
    strictly."""
    from dcatkit.data.synthetic import _TONE, CLASS_TONES, CLASSES

    assert list(CLASS_TONES) == list(CLASSES) and list(CLASS_TONES.values()) == _TONE.tolist()
    tones = list(CLASS_TONES.values())
    assert all(b > a for a, b in zip(tones, tones[1:])), tones
