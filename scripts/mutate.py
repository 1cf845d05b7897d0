#!/usr/bin/env python3
"""Mutation check of the safety guards (issue #13): a guard removed or weakened must fail a test.

Each mutation below replaces one exact text in one file, in a fresh copy of the
repo, and runs the tests it names there; a pass means the guard is untested.
The text must occur exactly once, so a mutation gone stale after an edit
stops the run instead of passing silently. Before any mutation, the named
tests run once on the unmutated copy: a test that fails anyway is reported
as a broken baseline, never as a kill.

    .venv/bin/python scripts/mutate.py                # every mutation, 2 at a time
    .venv/bin/python scripts/mutate.py --only limits  # names containing "limits"
    .venv/bin/python scripts/mutate.py --list

To add one: append a `mutation(name, file, old, new, *tests)` to MUTATIONS,
with `old` copied from the file and the tests that should kill it (fastest first).
Exit status: 0 all killed, 1 a survivor or a broken baseline, 2 a stale mutation.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutation:
    """`old` (exactly once in `path`) becomes `new`; one of `tests` must then fail.

    `equivalent` says why no test can tell the mutant from the original (a check
    that another one in the same place always makes first): it is still run and
    shown, but its surviving is not a failure.
    """

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    equivalent: str = ""


def mutation(name: str, path: str, old: str, new: str, *tests: str,
             equivalent: str = "") -> Mutation:
    return Mutation(name, path, old, new, tests, equivalent)


LIMITS = "src/matpi/core/limits.py"
RULES = "src/matpi/core/rules.py"
SESSION = "src/matpi/core/session.py"
SUPERVISION = "src/matpi/core/supervision.py"
THERMAL = "src/matpi/core/thermal.py"
CONTROLLER = "src/matpi/service/controller.py"
APP = "src/matpi/service/app.py"
DEADMAN = "src/matpi/drivers/deadman.py"
POLLING = "src/matpi/drivers/polling.py"
PADMODEL = "src/matpi/core/padmodel.py"
CLOCK = "src/matpi/drivers/clock.py"
HISTORY = "src/matpi/store/history.py"
SCHEMA = "src/matpi/store/schema.py"
RECORDER = "src/matpi/store/recorder.py"
CONFIG = "src/matpi/config/settings.py"
CONFIG_LOAD = "src/matpi/config/load.py"
CLI = "src/matpi/cli.py"
SAFEOFF = "src/matpi/service/safeoff.py"
THERMOMETERS = "src/matpi/drivers/thermometers.py"

WIRING = "tests/test_guard_wiring.py"
ABOVE_CEILING = f"{WIRING}::test_a_value_above_a_ceiling_is_refused"
BELOW_FLOOR = f"{WIRING}::test_a_value_below_a_floor_is_refused"
NOT_FINITE = f"{WIRING}::test_a_value_that_is_not_finite_is_refused"
SETPOINTS = f"{WIRING}::test_setpoints_stay_between_25_and_42_and_a_degree_under_the_trip"
PROGRAM_CAP = f"{WIRING}::test_a_program_longer_than_the_session_ceiling_is_refused"
RELAY_TIME = f"{WIRING}::test_a_relay_is_held_at_least_10_s"
OVERSHOOT = f"{WIRING}::test_a_relay_held_on_long_enough_to_overshoot_1_degree_is_refused"
DEAD_MAN_WIRED = f"{WIRING}::test_the_assembled_heater_switches_itself_off_unless_refreshed"
BOOT_OFF = f"{WIRING}::test_every_output_is_off_before_the_first_event"
OUTPUT_FAILS = f"{WIRING}::test_a_failing_heater_switches_every_output_off_and_latches_a_fault"
RESET_REFUSED = f"{WIRING}::test_a_refused_board_reset_latches_the_fault_again"
POLLER = f"{WIRING}::test_a_thermometer_that_raises_is_reported_and_the_poller_goes_on"
SLOW_POLL = ("tests/test_thermometers.py::"
             "test_a_poll_slower_than_its_interval_polls_again_at_once_and_close_ends_it")
AT_ONCE = "tests/test_sampling.py::test_what_reads_at_once_is_one_event_read_on_the_loops_thread"
READINGS_FAULT = ("tests/test_session_table.py::test_each_row_fires_where_it_says_and_lands_where_"
                  "it_says")
SAMPLE_NEXT = ("        self._timer = self._timers.call_later(self._clock.real_seconds("
               "self._pace_s),\n"
               "                                              self._sample_at_once)\n")
SAMPLE_NOW = ("        taken = [self._read(thermometer) for thermometer in self._at_once]\n"
              "        if self._pace_s > self._interval_s and _missed(taken):\n"
              "            self._rearm(self._interval_s)\n"
              "        readings = tuple(r for r in taken if r is not None)\n"
              "        if readings:\n            self._post(Readings(readings))\n")
"""The loop's sample in polling.py: the next one is scheduled, then this one read and posted."""
CLOSED_EARLY = "tests/test_sampling.py::test_a_poller_closed_before_the_loop_ran_never_reads"
PACE_BY_STATE = ("tests/test_sampling.py::"
                 "test_the_loop_reads_at_the_resting_pace_unless_a_session_can_heat")
PACE_FASTER = "tests/test_sampling.py::test_a_session_after_a_rest_is_read_at_once_at_the_full_pace"
PACE_THREAD = "tests/test_sampling.py::test_the_thread_rests_too_and_a_session_ends_its_wait"
PACE_DUE = ("tests/test_sampling.py::"
            "test_a_session_s_next_sample_is_due_a_full_interval_after_the_last")
RETRY_LOOP = "tests/test_sampling.py::test_a_bad_read_is_tried_again_at_the_full_pace_on_the_loop"
RETRY_THREAD = ("tests/test_sampling.py::"
                "test_a_bad_read_is_tried_again_at_the_full_pace_on_the_thread")
PACE_SPEED = "tests/test_sampling.py::test_a_faster_simulation_keeps_its_short_poll_at_rest"
PACE_ASSEMBLED = ("tests/test_sampling.py::"
                  "test_an_assembled_mat_reads_every_max_poll_s_at_rest_and_every_poll_s_in_a_session")
HAND_OFF_FAILS = ("tests/test_sampling.py::"
                  "test_sampling_goes_on_after_a_sample_whose_hand_off_failed")
BLOCKING_FLAGS = ("tests/test_thermometers.py::"
                  "test_a_sensor_that_waits_on_the_hardware_is_never_read_on_the_controllers_thread")
READINGS_LATE = ("tests/test_session.py::"
                 "test_readings_taken_together_each_count_whichever_place_it_has")
COMPARED_ONCE = "tests/test_thermal.py::test_sensors_read_together_are_compared_once_both_are_in"
NO_HISTORY = f"{WIRING}::test_a_damaged_history_leaves_no_daily_allowance"
PREHEAT_DOSE = f"{WIRING}::test_the_preheat_dose_counts_towards_the_session_limit"
PREHEAT_DAY = f"{WIRING}::test_a_preheat_ends_where_the_day_runs_out"

FAULTS = "tests/test_faults.py"
EVERY_GUARD = f"{FAULTS}::test_every_guard_is_what_makes_its_hazard_safe"
STALE = f"{FAULTS}::test_stale_reading_heat_off_in_3_s_and_fault_in_10"
SHORTED = f"{FAULTS}::test_shorted_sensor_reading_out_of_range_latches"
DISCONNECTED = f"{FAULTS}::test_disconnected_sensor_latches_after_three_bad_readings"
TRIP = f"{FAULTS}::test_over_temperature_trips_at_45"
SPIKES = f"{FAULTS}::test_single_noise_spikes_neither_trip_nor_heat"
LOW_SPIKE = f"{FAULTS}::test_a_low_spike_does_not_switch_the_heater_on"
DISAGREE = f"{FAULTS}::test_two_sensors_disagreeing_latch"
OPEN_HEATER = f"{FAULTS}::test_heater_that_does_not_heat_latches_not_heating"
OPEN_HEATER_CAUTIOUS = (
    f"{FAULTS}::test_heater_that_does_not_heat_latches_not_heating_with_a_cautious_model")
STUCK_CAUTIOUS = (
    f"{FAULTS}::test_sensor_stuck_just_below_the_setpoint_latches_not_heating_with_a_cautious_model")
SSR_STUCK = f"{FAULTS}::test_ssr_with_a_stuck_sensor_latches_not_heating"
FALLEN_OFF = f"{FAULTS}::test_both_sensors_lifted_off_slowly_latch_below_the_pad_model"
STUCK_LOW = f"{FAULTS}::test_sensor_stuck_below_the_setpoint_latches_not_heating"
STUCK_NEAR = f"{FAULTS}::test_sensor_stuck_just_below_the_setpoint_keeps_the_pad_at_the_setpoint"
WELDED = f"{FAULTS}::test_welded_relay_latches_overheating_and_the_power_relay_cuts_it"
WELDED_IDLE = f"{FAULTS}::test_welded_relay_while_idle_latches_runaway"
WARMED = f"{FAULTS}::test_mat_warmed_from_outside_latches_a_fault_before_45"
DOSE = f"{FAULTS}::test_dose_steps_down_at_75_percent_and_stops_at_the_limit"

SESSION_T = "tests/test_session.py"
STALE_3_10 = f"{SESSION_T}::test_heat_goes_off_after_3_s_without_reading_and_faults_at_10"
TRIP_AT_ONCE = f"{SESSION_T}::test_a_single_reading_at_the_trip_switches_heat_off_at_once"
TRIP_LATCHES = f"{SESSION_T}::test_trip_latches_fault_and_heat_never_resumes"
OUT_OF_RANGE = f"{SESSION_T}::test_out_of_range_readings_latch_a_sensor_fault"
HEAT_OFF_PROGRAM = f"{SESSION_T}::test_heat_off_program_never_heats"
DOSE_STOPS = f"{SESSION_T}::test_dose_limit_stops_heat_but_not_the_session"
SESSION_ENDS = f"{SESSION_T}::test_session_ends_exactly_at_its_duration"
DAILY_LIMIT = f"{SESSION_T}::test_daily_limit_ends_session_and_refuses_next_start"
PREHEAT_TIMEOUT = (
    f"{SESSION_T}::test_unconfirmed_preheat_times_out_into_a_cooldown_and_counts_as_use")
RESET_WHEN_COOL = f"{SESSION_T}::test_long_press_clears_fault_only_when_cool"
RESET_NEEDS_READING = f"{SESSION_T}::test_fault_cannot_be_cleared_without_a_valid_reading"
PROPERTIES = "tests/test_session_properties.py"
OFF_FAILS_TOO = (
    f"{WIRING}::test_an_output_failure_reaches_the_core_even_when_switching_off_fails_too")
SSR_HOLDS = f"{FAULTS}::test_an_ssr_holds_its_setpoint_for_a_whole_session_without_faults"

HAZARDS = "tests/test_hazards.py"
PREHEAT_LOOP = f"{HAZARDS}::test_remote_start_stop_loop_cannot_heat_someone_who_never_pressed"
PREHEAT_COUNTS = f"{HAZARDS}::test_a_stopped_preheat_cools_down_and_counts_its_minutes_and_dose"
THIRD_PREHEAT = f"{HAZARDS}::test_a_third_unconfirmed_preheat_within_the_hour_is_refused"
PREHEATS_RESTORED = f"{HAZARDS}::test_unconfirmed_preheats_are_remembered_across_a_restart"
PREHEAT_30_MIN = f"{HAZARDS}::test_a_confirmed_preheat_and_its_session_heat_30_min_at_most"
PREHEAT_CAP = f"{HAZARDS}::test_a_preheat_started_session_ends_at_the_daily_cap"
PRESS_AFTER_DEADLINE = f"{HAZARDS}::test_a_press_after_the_preheat_deadline_starts_nothing"
REFUSED_START = f"{HAZARDS}::test_a_refused_start_leaves_the_chosen_program"
STEP_FORWARD = f"{HAZARDS}::test_a_clock_stepped_forward_a_day_frees_no_minutes"
STEP_EITHER_WAY = f"{HAZARDS}::test_a_step_either_way_never_frees_minutes_or_dose"
CLOCK_STEPS = f"{HAZARDS}::test_the_calendar_follows_the_real_wall_clock_and_reports_steps"
ONE_SENSOR = f"{HAZARDS}::test_one_sensor_is_not_enough_to_heat"
ONE_LOW = f"{HAZARDS}::test_a_sensor_reading_low_from_the_start_cannot_overheat"
BOTH_LOW = f"{HAZARDS}::test_both_sensors_reading_low_from_the_start_cannot_overheat"
MISSING_VALUE = f"{HAZARDS}::test_a_reading_without_value_or_error_is_a_bad_reading_not_a_crash"

HISTORY_T = "tests/test_history.py"
CLOCK_BEHIND = f"{HISTORY_T}::test_a_clock_behind_at_boot_keeps_todays_minutes_and_dose"
EMPTY_HISTORY = f"{HISTORY_T}::test_an_empty_history_file_is_damaged_not_a_new_history"
PREHEAT_ROW = f"{HISTORY_T}::test_a_preheat_that_never_became_a_session_is_a_preheat_row"
STEP_RESTART = (f"{HISTORY_T}::"
                "test_a_clock_step_then_a_restart_keeps_the_days_use_cooldown_and_preheats")
FUTURE_PREHEATS = f"{HISTORY_T}::test_preheats_dated_in_the_future_count_as_just_started"
COOLING_DOSE = f"{HAZARDS}::test_the_dose_of_a_pad_cooling_down_counts_towards_the_day"
BACKSTEP_CRASH = (f"{HISTORY_T}::test_a_clock_step_mid_session_then_a_crash_keeps_the_"
                  "minutes_and_the_cooldown")
DURATION_AFTER_PREHEAT = (
    f"{HAZARDS}::test_a_longer_duration_after_a_confirmed_preheat_keeps_the_30_min_ceiling")

CONFIG_T = "tests/test_config.py"
NTC_CALIBRATED = f"{CONFIG_T}::test_an_ntc_on_the_pi_states_its_calibration"
DOSE_BETWEEN = f"{HISTORY_T}::test_the_days_dose_between_sessions_survives_a_restart"
SETTLED = f"{WIRING}::test_a_starting_mat_settles_what_it_restored_in_its_clocks_terms"
SETTLE_ATOMIC = f"{HISTORY_T}::test_settling_is_all_or_nothing"
SECOND_RESTART = (f"{HISTORY_T}::test_a_second_restart_after_a_marked_restore_keeps_the_day_"
                  "and_the_cooldown")
CARRY_THEN_SET = f"{HISTORY_T}::test_a_carry_over_then_a_clock_set_while_down_adds_up"
UNKNOWN_SYNC = f"{HISTORY_T}::test_a_boot_that_cannot_tell_its_sync_state_is_not_trusted"
PREHEATS_SET_ON = (f"{HISTORY_T}::"
                   "test_preheats_are_kept_when_the_clock_is_set_on_while_matpi_is_down")
DOWN_FORWARD = (f"{HISTORY_T}::"
                "test_a_clock_set_forward_while_matpi_was_down_keeps_the_cooldown")
DOWN_DAY_ON = f"{HISTORY_T}::test_a_clock_set_a_day_on_while_matpi_was_down_frees_no_minutes"
UNSYNCED_BOOT = (f"{HISTORY_T}::"
                 "test_after_a_boot_whose_clock_was_never_set_the_last_days_use_counts")
CRASH_MID_SESSION = (f"{HISTORY_T}::"
                     "test_a_crash_mid_session_leaves_an_interrupted_row_and_a_cooldown")
FORBIDDEN_SETTINGS = f"{CONFIG_T}::test_settings_the_safety_case_forbids_are_refused"
POWER_RELAY = (
    f"{CONFIG_T}::test_the_gpio_path_has_a_power_relay_unless_told_what_cuts_the_element")
SAME_DS18B20 = f"{CONFIG_T}::test_two_sensors_on_one_ds18b20_are_refused"
BOOT_PINS = f"{CONFIG_T}::test_the_default_relay_pins_are_pulled_high_at_power_on"
CLI_ARGS = "tests/test_cli.py::test_bad_arguments_are_explained"

THERMAL_T = "tests/test_thermal.py"
CEM43 = f"{THERMAL_T}::test_cem43_matches_the_published_times_to_9"
DOSE_METER = f"{THERMAL_T}::test_dose_meter_integrates_measured_temperature"
OUTLIER = f"{THERMAL_T}::test_one_outlier_neither_trips_nor_heats"
CONFIRMED_TRIP = f"{THERMAL_T}::test_confirmed_over_temperature_trips"
FRESH = f"{THERMAL_T}::test_every_sensor_must_be_fresh_and_the_hotter_rules"
THREE_IN_A_ROW = f"{THERMAL_T}::test_out_of_range_latches_after_three_in_a_row"

DEADMAN_T = "tests/test_deadman.py"
DEADMAN_OFF = f"{DEADMAN_T}::test_heater_goes_off_when_not_refreshed"
DEADMAN_LATCH = f"{DEADMAN_T}::test_after_an_expiry_on_raises_and_the_heater_stays_off"

CONTROLLER_T = "tests/test_controller.py"
STOP_OFF = f"{CONTROLLER_T}::test_press_heats_and_stop_request_switches_everything_off"
CORE_RAISES = f"{CONTROLLER_T}::test_an_exception_in_the_core_switches_off_and_propagates"
OUTPUT_FAULT = f"{CONTROLLER_T}::test_a_failing_output_latches_a_fault_with_heat_off"
DAMAGED_DAEMON = (
    "tests/test_daemon.py::test_a_damaged_history_keeps_the_mat_from_starting_a_session")
HAZARDS = "tests/test_hazards.py"
THIRD_PREHEAT = f"{HAZARDS}::test_a_third_unconfirmed_preheat_within_the_hour_is_refused"
DAILY_DOSE = f"{HAZARDS}::test_sessions_each_under_the_limit_cannot_add_up_past_the_daily_dose"


def bounds(key: str, low: str, high: str, path: str = RULES) -> list[Mutation]:
    """Two mutations of one `"key": (low, high)` bounds entry: the low dropped, the high raised."""
    old = f'"{key}": ({low}, {high})'
    return [
        mutation(f"bounds: {key} low {low} dropped", path, old, f'"{key}": (-1e9, {high})',
                 BELOW_FLOOR),
        mutation(f"bounds: {key} high {high} raised", path, old, f'"{key}": ({low}, 1e9)',
                 ABOVE_CEILING),
    ]


def ceiling(name: str, real: str, raised: str, *tests: str) -> Mutation:
    """A ceiling in `limits` raised (or a floor lowered)."""
    return mutation(f"limits: {name} {real} -> {raised}", LIMITS, f"{name}: Final = {real}",
                    f"{name}: Final = {raised}", *tests)


MUTATIONS: list[Mutation] = [
    # --- ceilings in limits.py: a Rules test with the documented number must refuse more
    ceiling("MAX_SESSION_MIN", "30.0", "60.0", ABOVE_CEILING),
    ceiling("TRIP_C", "45.0", "60.0", ABOVE_CEILING),
    ceiling("MAX_DOSE_CEM43", "9.0", "90.0", ABOVE_CEILING),
    ceiling("MAX_DAILY_DOSE_CEM43", "9.0", "90.0", ABOVE_CEILING),
    ceiling("MAX_DAILY_MIN", "120.0", "240.0", ABOVE_CEILING),
    ceiling("MAX_PREHEAT_MIN", "10.0", "30.0", ABOVE_CEILING),
    ceiling("MAX_RESET_BELOW_C", "35.0", "45.0", ABOVE_CEILING),
    ceiling("MAX_CHECK_WINDOW_S", "120.0", "600.0", ABOVE_CEILING),
    ceiling("MAX_CHECK_ERROR_CS", "300.0", "3000.0", ABOVE_CEILING),
    ceiling("MAX_RUNAWAY_RISE_C", "2.0", "10.0", ABOVE_CEILING),
    ceiling("MIN_COOLDOWN_MIN", "5.0", "0.0", BELOW_FLOOR),
    ceiling("MAX_SETPOINT_C", "42.0", "50.0", SETPOINTS),
    ceiling("MAX_OVERSHOOT_C", "1.0", "2.0", OVERSHOOT),
    ceiling("OVERSHOOT_CUT_C", "0.5", "5.0", EVERY_GUARD),
    ceiling("OVERHEAT_FAULT_C", "0.8", "5.0", WELDED),
    ceiling("STALE_HEAT_OFF_S", "3.0", "30.0", STALE_3_10, STALE),
    ceiling("STALE_FAULT_S", "10.0", "60.0", STALE_3_10, STALE),
    ceiling("SENSOR_MIN_C", "5.0", "-20.0", THREE_IN_A_ROW),
    ceiling("SENSOR_MAX_C", "60.0", "80.0", SHORTED),
    ceiling("MAX_PREHEATS_PER_HOUR", "2", "99", THIRD_PREHEAT),
    # --- every bound of Rules (rules.py BOUNDS and PAD_BOUNDS)
    *bounds("session_max_min", "1.0", "limits.MAX_SESSION_MIN"),
    *bounds("trip_c", "38.0", "limits.TRIP_C"),
    *bounds("dose_max_cem43", "0.1", "limits.MAX_DOSE_CEM43"),
    *bounds("daily_dose_max_cem43", "0.1", "limits.MAX_DAILY_DOSE_CEM43"),
    *bounds("cooldown_min", "limits.MIN_COOLDOWN_MIN", "240.0"),
    *bounds("daily_max_min", "0.0", "limits.MAX_DAILY_MIN"),
    *bounds("preheat_max_min", "1.0", "limits.MAX_PREHEAT_MIN"),
    *bounds("reset_below_c", "20.0", "limits.MAX_RESET_BELOW_C"),
    *bounds("hysteresis_c", "0.1", "3.0"),
    *bounds("min_on_s", "1.0", "300.0"),
    *bounds("min_off_s", "1.0", "300.0"),
    *bounds("ssr_window_s", "2.0", "30.0"),
    *bounds("ssr_band_c", "0.5", "5.0"),
    *bounds("check_gain_c", "0.5", "5.0"),
    *bounds("check_window_s", "10.0", "limits.MAX_CHECK_WINDOW_S"),
    *bounds("check_band_c", "0.0", "2.0"),
    *bounds("check_max_error_cs", "10.0", "limits.MAX_CHECK_ERROR_CS"),
    *bounds("runaway_settle_s", "0.0", "120.0"),
    *bounds("runaway_window_s", "10.0", "300.0"),
    *bounds("runaway_rise_c", "0.3", "limits.MAX_RUNAWAY_RISE_C"),
    *bounds("heater_w", "5.0", "1000.0"),
    *bounds("capacity_j_per_k", "50.0", "100000.0"),
    *bounds("room_loss_w_per_k", "0.1", "100.0"),
    *bounds("body_w_per_k", "0.0", "100.0"),
    *bounds("room_c", "5.0", "35.0"),
    *bounds("body_c", "30.0", "37.0"),
    # --- how Rules applies them
    mutation("rules: ceiling problems not raised", RULES,
             "            raise CeilingError(problem)", "            pass", ABOVE_CEILING),
    mutation("rules: range check skipped", RULES,
             "    if not low <= value <= high:", "    if False:", ABOVE_CEILING),
    mutation("rules: NaN and inf not named", RULES,
             " or not math.isfinite(value):", ":", NOT_FINITE),
    mutation("rules: setpoint may reach the trip", RULES,
             "rules.trip_c - 1.0)", "rules.trip_c + 5.0)", SETPOINTS),
    mutation("rules: setpoint floor 25 -> 0", RULES,
             "SETPOINT_LOW_C = 25.0", "SETPOINT_LOW_C = 0.0", SETPOINTS),
    mutation("rules: program longer than the session ceiling", RULES,
             "program.duration_min,\n                  1.0, rules.session_max_min)",
             "program.duration_min,\n                  1.0, 999.0)", PROGRAM_CAP),
    mutation("rules: progression longer than the session ceiling", RULES,
             "program.max_duration_min, program.duration_min, rules.session_max_min)",
             "program.max_duration_min, program.duration_min, 999.0)", PROGRAM_CAP),
    mutation("rules: relay minimum 10 -> 1 s", RULES,
             "RELAY_MIN_TIME_S = 10.0", "RELAY_MIN_TIME_S = 1.0", RELAY_TIME),
    mutation("rules: overshoot check skipped", RULES,
             "    if overshoot <= limits.MAX_OVERSHOOT_C:", "    if True:", OVERSHOOT),
    # --- the wiring of a running mat: app.py, controller.py, drivers
    mutation("app: heater not behind the dead-man", APP,
             "    drivers.heater = heater\n", "    drivers.heater = drivers.heater\n",
             DEAD_MAN_WIRED),
    mutation("app: dead-man expiry not told to the core", APP,
             "on_expired=lambda: inbox.put(", "on_expired=lambda: print(", DEAD_MAN_WIRED),
    mutation("app: damaged history keeps the daily cap", APP,
             "return None, blocked, replace(config.rules, daily_max_min=0.0)",
             "return None, blocked, config.rules", NO_HISTORY),
    mutation("app: damaged history fault clearable", APP,
             "        fault_clearable=history is not None,", "        fault_clearable=True,",
             NO_HISTORY, DAMAGED_DAEMON),
    mutation("app: damaged history without a fault", APP,
             "Restored(Usage(day=clock.today()), 0.0, UNUSABLE_FAULT)",
             "Restored(Usage(day=clock.today()), 0.0, None)", NO_HISTORY, DAMAGED_DAEMON),
    mutation("controller: no all-off at boot", CONTROLLER,
             "        try:\n            self._drivers.all_off()\n            self._step(Tick())",
             "        try:\n            self._step(Tick())", BOOT_OFF),
    mutation("controller: no all-off after an output failure", CONTROLLER,
             "            try:\n                self._drivers.all_off()\n",
             "            try:\n                pass\n", OUTPUT_FAILS),
    mutation("controller: an off that fails too keeps the fault from the core", CONTROLLER,
             "            except Exception:\n                log.exception(\"switching every "
             "output off failed too\")\n",
             "            except ZeroDivisionError:\n                pass\n", OFF_FAILS_TOO),
    mutation("controller: output failure not latched", CONTROLLER,
             'DriverFault(f"output failed: {exc}")', "Tick()", OUTPUT_FAILS, OUTPUT_FAULT),
    mutation("controller: refused reset not latched", CONTROLLER,
             'DriverFault(f"reset refused: {exc}")', "Tick()", RESET_REFUSED),
    mutation("controller: no all-off on the way out", CONTROLLER,
             "        finally:\n            self._drivers.all_off()",
             "        finally:\n            pass", STOP_OFF, CORE_RAISES),
    mutation("poller: a raising thermometer kills the thread", POLLING,
             "        except Exception as exc:", "        except ZeroDivisionError as exc:",
             POLLER),
    mutation("sampling: a sensor that blocks is read on the controller's thread", POLLING,
             "if timers is not None and t.reads_at_once]", "if timers is not None]",
             AT_ONCE),
    mutation("sampling: a poller closed before the loop ran reads all the same", POLLING,
             "        if self._closed:\n            return\n", "", CLOSED_EARLY),
    mutation("sampling: a failed hand-off ends the sampling", POLLING,
             SAMPLE_NEXT + SAMPLE_NOW, SAMPLE_NOW + SAMPLE_NEXT, HAND_OFF_FAILS),
    mutation("pacing: a session is read at the resting pace", POLLING,
             "pace_s = self._resting_s if snapshot.state in RESTING else self._interval_s",
             "pace_s = self._resting_s", PACE_BY_STATE, PACE_FASTER, PACE_THREAD,
             PACE_ASSEMBLED),
    mutation("pacing: a preheat rests", POLLING,
             "if snapshot.state in RESTING else",
             "if snapshot.state in (*RESTING, State.PREHEAT) else", PACE_BY_STATE),
    mutation("pacing: a session waits out the rest on the loop", POLLING,
             "            self._rearm(pace_s)\n", "", PACE_FASTER, PACE_DUE),
    mutation("pacing: a session's first sample a full interval from its start", POLLING,
             "due_s = max(self._sampled_at + pace_s - self._clock.now(), 0.0)",
             "due_s = pace_s", PACE_DUE),
    mutation("pacing: a session waits out the rest on the thread", POLLING,
             "        if faster:\n            self._wake_thread()\n",
             "        if faster:\n", PACE_THREAD),
    mutation("pacing: the thread ends at a faster pace", POLLING,
             "                if self._closed:\n                    return\n",
             "                return\n", PACE_THREAD),
    mutation("pacing: a read without a value waits out the rest on the loop", POLLING,
             "            self._rearm(self._interval_s)\n", "            pass\n", RETRY_LOOP),
    mutation("pacing: a read without a value waits out the rest on the thread", POLLING,
             "started + (self._interval_s if missed else self._pace_s)",
             "started + self._pace_s", RETRY_THREAD),
    mutation("pacing: an unreadable sensor ends the sample", POLLING,
             "any(reading is None or not in_sensor_range(reading.value_c)",
             "any(not in_sensor_range(reading.value_c)",
             RETRY_LOOP, RETRY_THREAD),
    mutation("pacing: an out-of-range read waits out the rest", POLLING,
             "or not in_sensor_range(reading.value_c) for",
             "or reading.value_c is None for", RETRY_LOOP, RETRY_THREAD),
    mutation("pacing: the daemon never paces", APP,
             "    controller.add_listener(poller.pace)\n", "", PACE_ASSEMBLED),
    mutation("pacing: a faster simulation rests too", APP,
             "resting_s=limits.MAX_POLL_S if speed == 1.0 else None)",
             "resting_s=limits.MAX_POLL_S)", PACE_SPEED),
    mutation("pacing: a rest outside the stale limit", LIMITS,
             "MAX_POLL_S: Final = 2.0", "MAX_POLL_S: Final = 3.5", PACE_ASSEMBLED),
    mutation("thermometers: a DS18B20 is read on the controller's thread", THERMOMETERS,
             "    reads_at_once = False  # each read waits for a 750 ms conversion",
             "    reads_at_once = True", BLOCKING_FLAGS),
    mutation("supervision: a fault in readings taken together is lost behind a later one",
             SUPERVISION, "        return next((r for r in reasons if r), None) or ",
             "        return reasons[-1] or ", READINGS_FAULT),
    mutation("supervision: a fault late in readings taken together is lost", SUPERVISION,
             "        return next((r for r in reasons if r), None) or ",
             "        return reasons[0] or ", READINGS_LATE),
    mutation("supervision: sensors read together are compared one by one", SUPERVISION,
             "        return self._over_temperature(reading.sensor, track)\n",
             "        return self._over_temperature(reading.sensor, track) or "
             "self._disagreement(now)\n", COMPARED_ONCE),
    mutation("poller: a poll slower than its interval kills the thread", CLOCK,
             "        return max(clock_s, 0.0) / self.speed", "        return clock_s / self.speed",
             SLOW_POLL),
    mutation("deadman: expiry does not latch", DEADMAN,
             "                self._tripped = True\n", "", DEADMAN_LATCH),
    mutation("deadman: on() ignores the latch", DEADMAN,
             "            if self._tripped:\n                self._switch.off()\n",
             "            if False:\n                self._switch.off()\n", DEADMAN_LATCH),
    mutation("deadman: expiry leaves the heater on", DEADMAN,
             "                self._tripped = True\n                self._switch.off()\n",
             "                self._tripped = True\n", DEADMAN_OFF),
    mutation("deadman: 3 s -> 60 s by default", DEADMAN,
             "max_on_s: float = limits.STALE_HEAT_OFF_S", "max_on_s: float = 60.0",
             DEAD_MAN_WIRED),
    # --- supervision.py
    mutation("supervision: stale reading keeps heat", SUPERVISION,
             "            if now - track.valid_at >= limits.STALE_HEAT_OFF_S:\n"
             "                return False\n", "", STALE_3_10, STALE, FRESH),
    mutation("supervision: stale reading never faults", SUPERVISION,
             "            if silent_s >= limits.STALE_FAULT_S:", "            if False:",
             STALE_3_10, STALE, FRESH),
    mutation("supervision: no reading yet, or a bad one, allows heat", SUPERVISION,
             "            if not track.recent or track.bad_in_row:\n                return False\n",
             "", FRESH, THREE_IN_A_ROW),
    mutation("supervision: out of range never latches", SUPERVISION,
             "            if track.bad_in_row >= OUT_OF_RANGE_IN_ROW:", "            if False:",
             THREE_IN_A_ROW, SHORTED, DISCONNECTED, OUT_OF_RANGE),
    mutation("supervision: out of range 3 -> 30 in a row", SUPERVISION,
             "OUT_OF_RANGE_IN_ROW = 3", "OUT_OF_RANGE_IN_ROW = 30", THREE_IN_A_ROW, DISCONNECTED),
    mutation("supervision: sensor range not checked", SUPERVISION,
             "return value_c is not None and limits.SENSOR_MIN_C <= value_c <= "
             "limits.SENSOR_MAX_C", "return value_c is not None", THREE_IN_A_ROW, SHORTED),
    mutation("supervision: over-temperature never trips", SUPERVISION,
             "        if filtered is not None and filtered >= self._trip_c:", "        if False:",
             CONFIRMED_TRIP, TRIP, TRIP_LATCHES),
    mutation("supervision: raw reading at the trip keeps heat", SUPERVISION,
             "            if track.last_raw_c is not None and track.last_raw_c >= self._trip_c:\n"
             "                return False\n", "", CONFIRMED_TRIP, TRIP_AT_ONCE, TRIP),
    mutation("supervision: disagreement ignored", SUPERVISION,
             "        if hot_c - cold_c > DISAGREE_C:", "        if False:", DISAGREE),
    mutation("supervision: disagreement 5 -> 50 °C", SUPERVISION,
             "DISAGREE_C = 5.0", "DISAGREE_C = 50.0", DISAGREE),
    mutation("supervision: no median filter", SUPERVISION,
             "MEDIAN_OF = 3", "MEDIAN_OF = 1", OUTLIER, LOW_SPIKE, SPIKES),
    mutation("supervision: not-heating never faults", SUPERVISION,
             "        if self._error_cs >= self._max_error_cs:", "        if False:",
             OPEN_HEATER_CAUTIOUS, STUCK_CAUTIOUS, SSR_STUCK),
    mutation("supervision: runaway never faults", SUPERVISION,
             "        if temp_c > BODY_WARMTH_C and temp_c - lowest_c >= self._rise_c:",
             "        if False:", WELDED_IDLE, WARMED),
    mutation("supervision: the runaway window never forgets a reading", SUPERVISION,
             "        while now - self._lows[0][0] > self._window_s:", "        while False:",
             "tests/test_runaway_window.py::"
             "test_the_lowest_of_the_window_is_the_lowest_a_scan_finds"),
    mutation("supervision: model gap never faults", SUPERVISION,
             "            estimate_c - reading_c < self._gap_c", "            True",
             OPEN_HEATER, FALLEN_OFF, STUCK_LOW),
    mutation("supervision: model gap 4 -> 40 °C", SUPERVISION,
             "MODEL_GAP_C = 4.0", "MODEL_GAP_C = 40.0", OPEN_HEATER, FALLEN_OFF, STUCK_LOW),
    mutation("supervision: model gap held 60 -> 600 s", SUPERVISION,
             "MODEL_GAP_HOLD_S = 60.0", "MODEL_GAP_HOLD_S = 600.0", FALLEN_OFF, STUCK_LOW),
    mutation("supervision: overheat never faults", SUPERVISION,
             "        if surface_c >= self._allowed_c + self._margin_c:", "        if False:",
             WELDED),
    # --- session.py and its model (sessionmodel.py, sessionrun.py): the heater demand,
    # the dose limit, the surface used, the guards of the transition table
    mutation("session: heat without a session",
             "src/matpi/core/sessionmodel.py",
             "            session is None\n            or (",
             "            (",
             PROPERTIES, equivalent="no session means no setpoint (kept for the type checker)"),
    mutation("session: heat without a setpoint",
             "src/matpi/core/sessionmodel.py",
             "            or setpoint is None\n", "", HEAT_OFF_PROGRAM, DOSE_STOPS),
    mutation("session: heat without a temperature",
             "src/matpi/core/sessionmodel.py",
             "            or surface is None\n", "", PROPERTIES,
             equivalent="no temperature means a sensor without readings: heat_allowed is False"),
    mutation("session: heat while a guard says no",
             "src/matpi/core/sessionmodel.py",
             "            or not self._supervisor.heat_allowed(now)\n", "",
             STALE_3_10, TRIP_AT_ONCE, STALE),
    mutation("session: no overshoot cut",
             "src/matpi/core/sessionmodel.py",
             "            or surface >= setpoint + limits.OVERSHOOT_CUT_C\n", "", EVERY_GUARD),
    mutation("session: dose limit never stops heat",
             "src/matpi/core/sessionrun.py",
             "    if not session.heat_stopped and dose >= limit:", "    if False:",
             DOSE, DOSE_STOPS),
    mutation("session: dose never steps heat down",
             "src/matpi/core/sessionrun.py",
             "    if session.heat_cap is None and dose >= DOSE_STEP_DOWN_AT * limit:",
             "    if False:", DOSE),
    mutation("session: daily dose budget ignored",
             "src/matpi/core/sessionrun.py",
             "    limit = min(session_left, daily_left)", "    limit = session_left",
             DAILY_DOSE),
    mutation("session: preheat dose not counted in the session's",
             "src/matpi/core/sessionmodel.py",
             "session_left = self.rules.dose_max_cem43 - session.dose_before",
             "session_left = self.rules.dose_max_cem43", PREHEAT_DOSE),
    mutation("session: surface is the reading alone",
             "src/matpi/core/sessionmodel.py",
             "        return reading if estimate is None else max(reading, estimate)",
             "        return reading", EVERY_GUARD, STUCK_NEAR),
    mutation("session: never ends at its duration", SESSION,
             "        return now - session.started_at >= session.planned_s",
             "        return False", SESSION_ENDS),
    mutation("session: daily limit never ends a session", SESSION,
             "        return self._used_min(now) >= self.rules.daily_max_min",
             "        return False", PREHEAT_DAY, DAILY_LIMIT),
    mutation("session: preheat never times out", SESSION,
             "        return now >= self._preheat_until", "        return False",
             PREHEAT_TIMEOUT),
    mutation("session: fault reset while hot", SESSION,
             "        return temperature is not None and temperature >= self.rules.reset_below_c",
             "        return False", RESET_WHEN_COOL),
    mutation("session: fault reset on a stale reading", SESSION,
             "        return not self._supervisor.heat_allowed(now) or self._surface_c() is None",
             "        return self._surface_c() is None", RESET_NEEDS_READING),
    # --- issue #13: the ways around the guards found by the review
    mutation("session: preheat minutes not counted",
             "src/matpi/core/sessionmodel.py",
             "        self.usage.minutes_today += elapsed_s / 60.0\n"
             "        self.usage.dose_today += session.dose.total",
             "        self.usage.minutes_today += 0.0 if session.preheat else elapsed_s / 60.0\n"
             "        self.usage.dose_today += session.dose.total", PREHEAT_COUNTS, PREHEAT_LOOP),
    mutation("session: preheat dose not counted",
             "src/matpi/core/sessionmodel.py",
             "        self.usage.dose_today += session.dose.total\n        if reason",
             "        self.usage.dose_today += 0.0 if session.preheat else session.dose.total\n"
             "        if reason", PREHEAT_COUNTS),
    mutation("session: no cooldown after a preheat",
             "src/matpi/core/sessionmodel.py",
             "        self._cool_down(now)\n        ended = PreheatEnded",
             "        if not session.preheat:\n"
             "            self._cool_down(now)\n        ended = PreheatEnded", PREHEAT_COUNTS),
    mutation("session: preheats per hour not counted", SESSION,
             "        self._unconfirmed.append(now)\n", "", THIRD_PREHEAT, PREHEAT_LOOP),
    mutation("session: preheats before a restart forgotten",
             "src/matpi/core/sessionmodel.py",
             "        self._unconfirmed = list(preheats)", "        self._unconfirmed = []",
             PREHEATS_RESTORED),
    mutation("session: a preheat's time not in the session ceiling",
             "src/matpi/core/sessionmodel.py",
             "self.rules.session_max_min * 60.0 - elapsed_s)",
             "self.rules.session_max_min * 60.0)", PREHEAT_30_MIN),
    mutation("session: a confirmed preheat's minutes not in the day",
             "src/matpi/core/sessionmodel.py",
             "        elapsed_s = now - preheat.started_at\n        self.usage.minutes_today += "
             "elapsed_s / 60.0\n",
             "        elapsed_s = now - preheat.started_at\n", PREHEAT_CAP, PREHEAT_30_MIN),
    mutation("session: the event before time", SESSION,
             "        # Time first: a press after the preheat's deadline finds the preheat over.\n"
             "        notices += self._expire(event, now)\n", "", PRESS_AFTER_DEADLINE),
    mutation("session: a refused start selects its program", SESSION,
             "        return (_start_of(event).program or self.selected) not in "
             "self.rules.programs\n",
             "        name = _start_of(event).program or self.selected\n"
             "        if name in self.rules.programs:\n            self._select(name)\n"
             "        return name not in self.rules.programs\n",
             REFUSED_START),
    # --- rows of the transition table (session.py): an unsafe row must fail a test
    mutation("session: a stop clears a fault", SESSION,
             "        row(FAULT,     Stop,          ALWAYS,            STAY,     _ignore),",
             "        row(FAULT,     Stop,          ALWAYS,            IDLE,     _clear_fault),",
             "tests/test_session_table.py::test_a_fault_is_left_only_by_a_long_press_at_the_mat",
             f"{SESSION_T}::test_remote_commands_cannot_clear_a_fault"),
    mutation("session: a remote start runs a session without a press", SESSION,
             "        row(IDLE,      Start,         _remote,           PREHEAT,  "
             "_begin_preheat),\n",
             "", f"{SESSION_T}::test_remote_start_preheats_until_a_press_at_the_mat"),
    mutation("session: a start during the cooldown", SESSION,
             "        row(COOLDOWN,  Start,         ALWAYS,            STAY,     Refuse(\"start\", "
             "_cooling)),",
             "        row(COOLDOWN,  Start,         ALWAYS,            RUNNING,  _begin_session),",
             PREHEAT_COUNTS),
    mutation("session: a clock step is taken for midnight", SESSION,
             "            self.usage.relabel(today)", "            self.usage.roll(today)",
             STEP_FORWARD, STEP_EITHER_WAY),
    mutation("session: an SSR checked for not heating at part duty",
             "src/matpi/core/sessionmodel.py",
             "band_c = rules.check_band_c if rules.heater_kind == \"relay\" else max(",
             "band_c = rules.check_band_c if rules.heater_kind == \"relay\" else min(",
             SSR_HOLDS),
    mutation("rules: one sensor is enough", RULES,
             "    if len(set(rules.sensors)) < 2:", "    if len(set(rules.sensors)) < 1:",
             ONE_SENSOR),
    mutation("supervision: heat follows the cooler sensor", SUPERVISION,
             "        self._hottest_c = max(t.filtered_c",
             "        self._hottest_c = min(t.filtered_c",
             ONE_LOW),
    mutation("supervision: a missing value without an error crashes", SUPERVISION,
             '"no value" if value is None else ', "", MISSING_VALUE),
    mutation("padmodel: the estimate starts at a low reading", PADMODEL,
             "            self.temp_c = max(reading_c, self._model.room_c)",
             "            self.temp_c = reading_c", BOTH_LOW),
    mutation("clock: steps never reported", CLOCK,
             "        return abs(offset_s - last_s) > STEP_TOLERANCE_S",
             "        return False", CLOCK_STEPS, STEP_FORWARD),
    mutation("clock: the wall clock read once", CLOCK,
             "        if self.speed == 1.0:\n            return self._wall()\n", "", CLOCK_STEPS),
    mutation("history: a clock behind at boot starts a new day", HISTORY,
             "            today = max(today, local_day(float(latest[0])))", "            pass",
             CLOCK_BEHIND),
    mutation("history: an empty file is a new history", SCHEMA, "    if empty:",
             "    if False:", EMPTY_HISTORY),
    mutation("history: preheats not restored", HISTORY,
             "(PREHEAT, EndReason.CONFIRMED.value,",
             "('none', EndReason.CONFIRMED.value,",
             PREHEAT_ROW),
    mutation("history: a clock step's carry-over not saved", RECORDER,
             "                self._writes.append(CarryOver(notice, now, now + "
             "snapshot.cooldown_remaining_s,\n"
             "                                              None if self._mark is None else "
             "self._mark()))\n", "                pass\n", STEP_RESTART),
    mutation("history: a clock step's carry-over not restored", HISTORY,
             "        if carried is not None and carried[0] == day:", "        if False:",
             STEP_RESTART),
    mutation("history: preheats dated in the future forgotten", HISTORY,
             '            "AND started_wall > ?",', '            "AND started_wall > ? AND 0",',
             FUTURE_PREHEATS),
    mutation("session: the cooling pad's dose not counted",
             "src/matpi/core/sessionmodel.py",
             "            self.usage.dose_today += self._between.total - before",
             "            pass", COOLING_DOSE),
    mutation("history: the open row not checkpointed at a clock step", RECORDER,
             "                    # The open row, and the cooldown that follows it, in the new "
             "clock's terms.\n                    self._checkpoint(snapshot)\n",
             "                    pass\n",
             BACKSTEP_CRASH),
    mutation("session: a remote duration past the ceiling after a preheat",
             "src/matpi/core/sessionmodel.py",
             "        ceiling = self.rules.session_max_min - session.preheat_s / 60.0",
             "        ceiling = self.rules.session_max_min", DURATION_AFTER_PREHEAT),
    mutation("config: an NTC without its calibration", CONFIG_LOAD,
             "        if kind == \"ntc\" and index >= first_on_pi:",
             "        if kind == \"ntc\" and index >= first_on_pi and False:", NTC_CALIBRATED),
    mutation("history: the day's dose not saved", RECORDER,
             "        self._save_dose(snapshot)\n", "", DOSE_BETWEEN),
    mutation("recorder: a write saved without its clock mark", RECORDER,
             "        wrote = len(self._writes) > kept_back", "        wrote = False",
             DOWN_FORWARD),
    mutation("history: the day's saved dose not restored", HISTORY,
             "        usage.dose_today = max(usage.dose_today, self._saved_dose(day))",
             "        pass", DOSE_BETWEEN),
    mutation("history: a clock set while matpi was down goes unseen", HISTORY,
             "            stepped = abs(shift_s) > STEP_TOLERANCE_S",
             "            stepped = False", DOWN_DAY_ON),
    mutation("history: the cooldown timed by the wall clock in the same boot", HISTORY,
             "            return until - since.mark_wall - since.real_s",
             "            return until - now_wall", DOWN_FORWARD),
    mutation("history: a boot whose clock was never set is trusted", HISTORY,
             "        if synced != 1:", "        if False:", UNSYNCED_BOOT),
    mutation("history: the cooldown saved from the checkpoint, not the session's end", RECORDER,
             "        return float(snapshot.remaining_s) if snapshot.state is State.RUNNING else (",
             "        return 0.0 if snapshot.state is State.RUNNING else (", CRASH_MID_SESSION),
    mutation("app: a restore not settled", APP,
             "        history.settle(saved, now_wall, mark)\n", "", SETTLED),
    mutation("history: settle writes no carry-over", HISTORY,
             "            self._write_carry(carried, now_wall, now_wall + "
             "restored.cooldown_remaining_s)\n",
             "", SECOND_RESTART),
    mutation("history: the day set while down counted from its rows alone", HISTORY,
             "            earlier = self._use_of(since.unseen_day, {})",
             "            earlier = self.usage(since.unseen_day, {})", CARRY_THEN_SET),
    mutation("history: a boot that cannot tell its sync state is trusted", HISTORY,
             "        if synced != 1:", "        if synced == 0:", UNKNOWN_SYNC),
    mutation("history: preheat ages by the wall clock alone", HISTORY,
             "        ages = {max(now_wall - since.wall_shift_s - w, 0.0) for w in walls}",
             "        ages = {max(now_wall - w, 0.0) for w in walls}", PREHEATS_SET_ON),
    mutation("history: settle in several transactions", HISTORY,
             '        with self._transaction("settle what was restored"):  # all or nothing\n',
             '        with suppress():  # no transaction: each write commits alone\n',
             SETTLE_ATOMIC),
    mutation("app: the local reset does not rearm the dead-man", APP, "        heater.rearm()\n",
             "        pass\n", DEAD_MAN_WIRED),
    mutation("config: remote start without a press allowed", CONFIG_LOAD,
             '    if not session.boolean("remote_start_needs_press", True):',
             '    if not session.boolean("remote_start_needs_press", True) and False:',
             FORBIDDEN_SETTINGS),
    mutation("config: no power relay needed", CONFIG_LOAD,
             "None if omitted_because or driver == \"board\" else DEFAULT_POWER_PIN",
             "None", POWER_RELAY),
    mutation("config: omitted_because need not name the hardware", CONFIG_LOAD,
             "len(omitted_because) < 12", "len(omitted_because) < 1", POWER_RELAY),
    mutation("config: two sensors on one DS18B20", CONFIG_LOAD,
             "    if len(set(ids)) != len(ids):", "    if False:", SAME_DS18B20),
    mutation("config: heater on a pin pulled low at boot", CONFIG,
             "DEFAULT_HEATER_PIN = 5", "DEFAULT_HEATER_PIN = 17", BOOT_PINS),
    mutation("config: power relay on a pin pulled low at boot", CONFIG,
             "DEFAULT_POWER_PIN = 6", "DEFAULT_POWER_PIN = 23", BOOT_PINS),
    mutation("cli: a fast simulation writes into a real mat's history", CLI,
             "    if (folder / SIMULATED_STATE).exists():\n        return False\n"
             "    if not folder.exists() or not any(folder.iterdir()):",
             "    if True:",
             "tests/test_cli.py::test_a_fast_simulation_refuses_a_real_mats_state"),
    mutation("cli: --start heats a real mat", CLI,
             "    if args.start is not None and not simulate:",
             "    if args.start is not None and not simulate and False:", CLI_ARGS),
    # --- thermal.py: the dose
    mutation("thermal: dose gap capped at 0 s", THERMAL,
             "dt_s = min(max(now - at, 0.0), limits.STALE_FAULT_S)",
             "dt_s = min(max(now - at, 0.0), 0.0)", DOSE_METER, DOSE),
    mutation("thermal: CEM43 rate halved", THERMAL,
             "    r = 0.5 if temp_c >= 43.0 else 0.25", "    r = 0.25 if temp_c >= 43.0 else 0.125",
             CEM43, DOSE_METER),
    # --- the service (issue #14): a hung loop, a clean stop, a crash
    mutation("safe-off: a watchdog kill latches no fault", SAFEOFF,
             "    if service_result != WATCHDOG_RESULT:\n        return",
             "    if True:\n        return",
             "tests/test_safeoff.py::test_after_a_watchdog_kill_the_next_start_comes_up_in_a_"
             "latched_fault"),
    mutation("controller: a stop on request does not end the session", CONTROLLER,
             "                    self._step(Stop(Source.LOCAL))\n",
             "                    pass\n",
             "tests/test_daemon.py::test_stopping_switches_every_output_off_and_records_the_"
             "session"),
    mutation("recorder: a running session saved every 30 s", RECORDER,
             "CHECKPOINT_S = 4.0", "CHECKPOINT_S = 30.0",
             f"{HISTORY_T}::test_a_crash_at_any_second_forgets_at_most_one_checkpoint_interval"),
    # --- the page's flood (issue #18): only a lack of descriptors is skipped, never a sensor
    mutation("DS18B20: a read error skipped as a shortage", THERMOMETERS,
             "            except OSError as exc:\n                self._release()\n"
             "                return self._failed(str(exc))",
             "            except OSError as exc:\n                self._release()\n"
             "                raise SensorUnreadable(str(exc)) from exc",
             "tests/test_web_hardening.py::test_a_read_error_of_the_sensor_is_a_bad_reading_"
             "never_skipped"),
    # --- the history's writer thread (issue #17): a failed or stuck disk is a fault
    mutation("history writer: a failed write is not a fault", "src/matpi/store/writer.py",
             "exc_info=not isinstance(exc, HistoryError))\n"
             "            self._on_error(WRITE_FAILED_FAULT)\n",
             "exc_info=not isinstance(exc, HistoryError))\n",
             "tests/test_history_writer.py"),
    mutation("history writer: a rolled-back row id kept", "src/matpi/store/writer.py",
             "            self._open = opened  # rolled back", "            pass  # rolled back",
             "tests/test_history_writer.py"),
    mutation("history writer: a stuck disk never reported", "src/matpi/store/recorder.py",
             "behind = not queued or stalled_s > self._max_stall_s",
             "behind = not queued", "tests/test_history_writer.py"),
    mutation("history writer: a stuck disk is reported once, so a reset outlasts it",
             "src/matpi/store/recorder.py",
             "{stalled_s:.1f} s\")\n            self._on_error(WRITE_FAILED_FAULT)\n",
             "{stalled_s:.1f} s\")\n                self._on_error(WRITE_FAILED_FAULT)\n",
             "tests/test_history_writer.py"),
    mutation("history writer: a full queue drops the step's writes",
             "src/matpi/store/recorder.py",
             "        if queued:\n            self._writes = []",
             "        if True:\n            self._writes = []", "tests/test_history_writer.py"),
    mutation("history writer: a failed commit is never tried again",
             "src/matpi/store/writer.py",
             "            self._unsaved = writes\n", "            self._unsaved = []\n",
             "tests/test_history_writer.py"),
    mutation("history writer: the daemon's write failures reach no one",
             "src/matpi/service/app.py",
             "on_error=lambda why: inbox.put(DriverFault(why)))",
             "on_error=lambda why: None)", "tests/test_guard_wiring.py"),
    mutation("history writer: a clean stop closes the history under the writer",
             "src/matpi/service/app.py",
             "if self.recorder is not None and not self.recorder.close():",
             "if False:", "tests/test_guard_wiring.py"),
    # --- the controller's wait (issue #17): a stop asked by a signal is never left waiting
    mutation("netloop: a timer that can wait delays the one that cannot",
             "src/matpi/remote/netloop.py",
             "latest = min(timer.when + timer.slack_s for timer in self._timers)",
             "latest = self._timers[0].when + self._timers[0].slack_s", "tests/test_netloop.py"),
    mutation("netloop: a flood of items starves the sampling timer",
             "src/matpi/remote/netloop.py",
             "                if self._timers and self._timers[0].when <= self._monotonic():",
             "                if False:",
             "tests/test_netloop.py::test_a_due_timer_runs_before_the_next_item_however_many_wait"),
    mutation("controller: the watchdog's ping waits for an event without bound", CONTROLLER,
             "        return self._alive_due + self._alive_slack_s - real_now",
             "        return float(\"inf\")", CONTROLLER_T),
    mutation("netloop: a signal handler's put does not wake the wait",
             "src/matpi/remote/netloop.py",
             "        if self._selecting:\n            self._wake()",
             "        if self._selecting and not self.on_loop_thread():\n            self._wake()",
             "tests/test_netloop.py"),
    mutation("netloop: a put from another thread does not wake the wait",
             "src/matpi/remote/netloop.py",
             "        if self._selecting:\n            self._wake()",
             "        if self._selecting and self.on_loop_thread():\n            self._wake()",
             "tests/test_netloop.py"),
    mutation("netloop: a handler's put before the wait is not looked for",
             "src/matpi/remote/netloop.py",
             "            if self._items and (for_items or isinstance(self._items[0], _Call)):\n"
             "                return",
             "            if False:\n                return", "tests/test_netloop.py"),
    mutation("netloop: a handler's put while the wait is prepared does not wake it",
             "src/matpi/remote/netloop.py",
             "        self._selecting = True\n        try:\n            if self._items",
             "        try:\n            if self._items", "tests/test_netloop.py"),
    # --- paho without OpenSSL (issue #17): a lost connection is still seen
    mutation("openssl: paho's plain sockets name ssl's exceptions on None",
             "src/matpi/remote/openssl.py",
             '        vars(paho)["ssl"] = PlainSockets', "        pass", "tests/test_openssl.py"),
    mutation("openssl: a paho release nobody read goes without OpenSSL",
             "src/matpi/remote/openssl.py",
             "if needed or loaded or not _scanned() or", "if needed or loaded or",
             "tests/test_openssl.py"),
    # --- occupancy (issue #15): heat and vibration only with someone on the mat
    mutation("occupancy: a session heats with the mat empty", "src/matpi/core/sessionmodel.py",
             "            or (self.state is State.RUNNING and not self._someone_on())\n", "",
             "tests/test_occupancy.py"),
    mutation("occupancy: a session vibrates with the mat empty", "src/matpi/core/sessionmodel.py",
             "if self.state is State.RUNNING and session is not None and self._someone_on():",
             "if self.state is State.RUNNING and session is not None:",
             "tests/test_occupancy.py"),
    mutation("occupancy: a press on an empty mat starts a session", SESSION,
             "        row(IDLE,      Press,         _nobody_on,        STAY,     "
             "_refuse_on_empty),\n",
             "", "tests/test_occupancy.py"),
    mutation("occupancy: a press with nobody confirms a preheat", SESSION,
             "        row(PREHEAT,   Press,         _nobody_on,        STAY,     "
             "_refuse_on_empty),\n",
             "", "tests/test_occupancy.py"),
    mutation("occupancy: a double press with nobody confirms a preheat", SESSION,
             "        row(PREHEAT,   DoublePress,   _nobody_on,        STAY,     "
             "_refuse_on_empty),\n",
             "", "tests/test_occupancy.py"),
    mutation("occupancy: a remote preheat heats someone lying on the mat",
             "src/matpi/core/sessionmodel.py",
             "            or (self.state is State.PREHEAT and self.occupied is True)\n", "",
             "tests/test_occupancy.py"),
    mutation("occupancy sensor: a post held up is overtaken by a later level",
             "src/matpi/drivers/settled.py",
             "        with self._lock:\n            if not self._settle.is_current(generation):",
             "        if True:\n            if not self._settle.is_current(generation):",
             "tests/test_occupancy_drivers.py"),
    mutation("occupancy sensor: a late timer posts an unsettled level",
             "src/matpi/drivers/settled.py",
             "            if not self._settle.is_current(generation):",
             "            if False:", "tests/test_occupancy_drivers.py"),
    mutation("occupancy sensor: an edge after close starts a timer",
             "src/matpi/drivers/settled.py",
             "            if not self._closed:", "            if True:",
             "tests/test_occupancy_drivers.py"),
    mutation("occupancy: a vacated session never ends", SESSION,
             "        row(RUNNING,   Time,          _vacated_too_long, COOLDOWN, _end_vacated),\n",
             "", "tests/test_occupancy.py"),
    mutation("occupancy: the mat counts as occupied until the sensor speaks",
             "src/matpi/core/sessionmodel.py",
             "self.occupied: bool | None = False if rules.occupancy_sensor else None",
             "self.occupied: bool | None = True if rules.occupancy_sensor else None",
             "tests/test_occupancy.py"),
    mutation("occupancy: a repeated empty restarts the grace", SESSION,
             "if self.occupied and not event.occupied:", "if not event.occupied:",
             "tests/test_occupancy.py"),
    mutation("occupancy: the controller does not wake for the grace",
             "src/matpi/core/sessionmodel.py",
             "                deadlines.append(self._left_at + self.rules.vacated_grace_s)\n",
             "", "tests/test_occupancy.py"),
    mutation("occupancy: a grace time past the ceiling", RULES,
             '"vacated_grace_s": (5.0, limits.MAX_VACATED_GRACE_S),',
             '"vacated_grace_s": (5.0, 3600.0),',
             "tests/test_occupancy_drivers.py"),
]

# --- the machinery --------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
COPIED = ("src", "tests", "firmware", "config", "systemd", "scripts", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", ".venv", ".git", ".pytest_cache", ".mypy_cache",
                                 ".ruff_cache", ".hypothesis", "*.pyc")
PYTEST = ("-m", "pytest", "-x", "-q", "-p", "no:cacheprovider")
SUMMARY_LINE = re.compile(r"^(FAILED|ERROR) \S+\.py(::|\s|$)")


@dataclass(frozen=True)
class Outcome:
    """What one pytest run said: `passed` is exit code 0; `timed_out` means it was killed."""

    passed: bool
    timed_out: bool
    seconds: float
    output: str


def copy_repo(source: Path, dest: Path) -> None:
    """The parts of the repo the tests need, without caches or the venv."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        item = source / name
        if item.is_dir():
            shutil.copytree(item, dest / name, ignore=IGNORED, symlinks=True)
        elif item.is_file():
            shutil.copy2(item, dest / name)


def stale_problem(root: Path, m: Mutation) -> str | None:
    """Why `m` cannot be applied to the tree at `root`, if it cannot."""
    path = root / m.path
    if not path.is_file():
        return f"mutation {m.name!r}: {m.path} does not exist"
    count = path.read_text(encoding="utf-8").count(m.old)
    if count != 1:
        return (f"mutation {m.name!r}: its old text occurs {count} times in {m.path} "
                f"(must be exactly once): {m.old!r}")
    return None


def test_env(copy: Path) -> dict[str, str]:
    """The copy's src first on the path: the venv's editable install points at the original."""
    paths = [str(copy / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1"}


def run_in(copy: Path, args: list[str], timeout_s: float) -> Outcome:
    """Runs the venv's python in `copy`; on timeout its whole process group is killed."""
    started = time.monotonic()
    process = subprocess.Popen([str(PYTHON), *args], cwd=copy, env=test_env(copy),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return Outcome(False, True, time.monotonic() - started, output)
    return Outcome(process.returncode == 0, False, time.monotonic() - started, output)


def run_tests(snapshot: Path, tests: tuple[str, ...], timeout_s: float,
              m: Mutation | None = None) -> Outcome:
    """The tests in a fresh copy of `snapshot`, with `m` applied if given."""
    with tempfile.TemporaryDirectory(prefix="matpi-mutant-") as tmp:
        copy = Path(tmp)
        copy_repo(snapshot, copy)
        if m is not None:
            problem = stale_problem(copy, m)
            if problem:
                raise SystemExit(problem)
            path = copy / m.path
            path.write_text(path.read_text(encoding="utf-8").replace(m.old, m.new),
                            encoding="utf-8")
        return run_in(copy, [*PYTEST, *tests], timeout_s)


def check_copy_is_imported(snapshot: Path) -> None:
    """Fails unless `import matpi` in a copy finds the copy's code, not the original's."""
    found = run_in(snapshot, ["-c", "import matpi; print(matpi.__file__)"], 60.0)
    where = found.output.strip()
    if not found.passed or not Path(where).resolve().is_relative_to(snapshot.resolve()):
        raise SystemExit(f"matpi is imported from {where!r}, not from the copy {snapshot}")


def failures(output: str) -> list[str]:
    """pytest's summary lines of failed tests (not the log lines that start with ERROR)."""
    return [line for line in output.splitlines() if SUMMARY_LINE.match(line)]


def baselines(snapshot: Path, chosen: list[Mutation], timeout_s: float,
              jobs: int) -> dict[tuple[str, ...], Outcome]:
    """Each distinct test set, unmutated: all at once first, one set at a time if that fails."""
    sets = sorted({tuple(sorted(set(m.tests))) for m in chosen})
    union = tuple(sorted({test for tests in sets for test in tests}))
    print(f"baseline: {len(union)} tests unmutated ...", file=sys.stderr, flush=True)
    together = run_tests(snapshot, union, timeout_s)
    if together.passed:
        return dict.fromkeys(sets, together)
    print(f"baseline failed ({'; '.join(failures(together.output)) or 'timeout'}); "
          f"checking {len(sets)} test sets one by one", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = pool.map(lambda tests: run_tests(snapshot, tests, timeout_s), sets)
        return dict(zip(sets, outcomes, strict=True))


def result_of(outcome: Outcome) -> str:
    if outcome.timed_out:
        return "timeout"
    return "survived" if outcome.passed else "killed"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", metavar="NAME", help="run the mutations whose name contains NAME")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--jobs", type=int, default=2, help="mutations run at once (2)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds one pytest run may take (300); a timeout counts as killed")
    args = parser.parse_args(argv)

    names = [m.name for m in MUTATIONS]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SystemExit(f"mutation names used twice: {twice}")
    chosen = [m for m in MUTATIONS if args.only is None or args.only.lower() in m.name.lower()]
    if args.list:
        for m in chosen:
            print(f"{m.name}\t{m.path}\t{' '.join(m.tests)}")
        return 0
    if not chosen:
        raise SystemExit(f"no mutation name contains {args.only!r} (see --list)")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="matpi-mutate-") as tmp:
        # One snapshot of the tree: edits made while this runs do not mix into it.
        snapshot = Path(tmp) / "repo"
        copy_repo(REPO, snapshot)
        problems = [p for p in (stale_problem(snapshot, m) for m in chosen) if p]
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 2
        check_copy_is_imported(snapshot)
        base = baselines(snapshot, chosen, args.timeout, args.jobs)

        def one(m: Mutation) -> tuple[str, float]:
            before = base[tuple(sorted(set(m.tests)))]
            if not before.passed:
                return "broken baseline", 0.0
            outcome = run_tests(snapshot, m.tests, args.timeout, m)
            result = result_of(outcome)
            if result == "survived" and m.equivalent:
                result = "equivalent"
            by = next(iter(failures(outcome.output)), "")
            print(f"{result:>10}  {outcome.seconds:5.1f} s  {m.name}  {by}", file=sys.stderr,
                  flush=True)
            return result, outcome.seconds

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(one, chosen))

    print("| mutation | file | tests | result | seconds |")
    print("|---|---|---|---|---|")
    for m, (result, seconds) in zip(chosen, results, strict=True):
        tests = ", ".join(t.removeprefix("tests/") for t in m.tests)
        print(f"| {cell(m.name)} | {m.path} | {cell(tests)} | {result} | {seconds:.1f} |")
    print()
    broken = {tests: o for tests, o in base.items() if not o.passed}
    for test_set, outcome in broken.items():
        why = "; ".join(failures(outcome.output)) or outcome.output.strip()[-500:]
        print(f"broken baseline: {' '.join(test_set)}: {why}")
    survived = [m.name for m, (r, _) in zip(chosen, results, strict=True) if r == "survived"]
    for name in survived:
        print(f"survived: {name}")
    for m, (result, _) in zip(chosen, results, strict=True):
        if m.equivalent and result == "equivalent":
            print(f"equivalent (survives by design): {m.name}: {m.equivalent}")
        elif m.equivalent and result in ("killed", "timeout"):
            print(f"marked equivalent but {result}: {m.name}: drop its mark")
    killed = sum(r in ("killed", "timeout") for r, _ in results)
    unbased = sum(r == "broken baseline" for r, _ in results)
    equivalent = sum(r == "equivalent" for r, _ in results)
    print(f"run took {time.monotonic() - started:.0f} s; {equivalent} equivalent"
          + (f"; {unbased} not run: broken baseline" if unbased else ""))
    print(f"{killed} killed, {len(survived)} survived")
    return 1 if survived or unbased else 0


if __name__ == "__main__":
    sys.exit(main())
