"""The matrix's judge on hand-made end states: each definition in verdict.DEFINITIONS fails the case it
must. Standard library only: `python3 -m unittest discover -s scripts/reliability` (and
`scripts/reliability/run --self-test`, which every run does first)."""

from __future__ import annotations

import copy
import unittest

import verdict

OLD, NEW = "ami-old", "ami-new"


def world(image: str = NEW, version: str = "2") -> dict:
    return {
        "desired": 2,
        "launch_template": {"LaunchTemplateId": "lt-1", "Version": version},
        "group_tags": {},
        "instances": [{"id": f"i-{n}", "image": image, "lifecycle": "InService", "health": "Healthy"} for n in (1, 2)],
        "target_health": {"web": {"i-1": "healthy", "i-2": "healthy"}},
        "lt_versions": [
            {"number": 1, "image": OLD, "description": "", "default": False},
            {"number": 2, "image": NEW, "description": "bakeroll:release commit=c1 ami=ami-new", "default": True},
        ],
        "refreshes": [{"id": "r-1", "status": "Successful", "desired_version": "2"}],
        "images": [{"id": NEW, "name": "shop-c1", "state": "available", "tags": {"bakeroll:pipeline": "local",
                                                                                 "bakeroll:commit": "c1"}, "snapshots": ["snap-1"]}],
        "snapshots": [{"id": "snap-1", "tags": {"bakeroll:pipeline": "local"}}],
        "build_instances": [{"id": "i-b", "state": "terminated", "tags": {}}],
    }


class EndState(unittest.TestCase):
    def test_new_previous_and_human(self):
        self.assertEqual(verdict.end_state(world(), "shop-c1", OLD)[0], "new")
        back = world(OLD, "1")
        self.assertEqual(verdict.end_state(back, "shop-c1", OLD)[0], "previous")
        mixed = world()
        mixed["instances"][1]["image"] = OLD
        self.assertEqual(verdict.end_state(mixed, "shop-c1", OLD)[0], "human")

    def test_an_unhealthy_member_an_active_refresh_or_a_short_fleet_is_not_verified(self):
        for spoil in (lambda w: w["target_health"]["web"].update({"i-2": "unhealthy"}),
                      lambda w: w["refreshes"].append({"id": "r-2", "status": "InProgress", "desired_version": "2"}),
                      lambda w: w["instances"].pop(),
                      lambda w: w["launch_template"].update({"Version": "1"})):
            w = world()
            spoil(w)
            self.assertEqual(verdict.end_state(w, "shop-c1", OLD)[0], "human", w)

    def test_leaving_instances_do_not_count(self):
        w = world()
        w["instances"].append({"id": "i-9", "image": OLD, "lifecycle": "Terminating", "health": "Healthy"})
        self.assertEqual(verdict.end_state(w, "shop-c1", OLD)[0], "new")


class Leaks(unittest.TestCase):
    def leaks(self, spoil) -> list[str]:
        w = copy.deepcopy(world())
        spoil(w)
        return verdict.leaks(w, "local", "c1")

    def test_a_clean_world_leaks_nothing(self):
        self.assertEqual(self.leaks(lambda w: None), [])

    def test_each_kind_of_leak(self):
        cases = {
            "build instance": lambda w: w["build_instances"].append({"id": "i-c", "state": "stopped", "tags": {}}),
            "pending": lambda w: w["images"][0].update(state="pending"),
            "2 AMIs of commit c1": lambda w: w["images"].append(dict(w["images"][0], id="ami-two")),
            "another commit": lambda w: w["images"].append(dict(w["images"][0], id="ami-x", tags={
                "bakeroll:pipeline": "local", "bakeroll:commit": "c2"})),
            "snapshot snap-9 of no image": lambda w: w["snapshots"].append({"id": "snap-9", "tags": {"bakeroll:pipeline": "local"}}),
            "LT version 3 never rolled out": lambda w: w["lt_versions"].append(
                {"number": 3, "image": "ami-z", "description": "bakeroll:release commit=c9", "default": False}),
            "all for ami-new": lambda w: (w["lt_versions"].append(dict(w["lt_versions"][1], number=3, default=False)),
                                          w["refreshes"].append({"id": "r-3", "status": "Failed", "desired_version": "3"})),
            "deploy lock": lambda w: w["group_tags"].update({"bakeroll:lock": "run=1"}),
        }
        for word, spoil in cases.items():
            found = self.leaks(spoil)
            self.assertTrue(any(word in leak for leak in found), f"{word}: {found}")

    def test_a_rolled_back_release_is_no_leak(self):
        def rolled_back(w):
            w["launch_template"]["Version"] = "1"
            w["refreshes"][0]["status"] = "RollbackSuccessful"
        self.assertEqual(self.leaks(rolled_back), [])


class Regions(unittest.TestCase):
    OLD = {"us-east-1": OLD, "ap-southeast-1": "ami-old2"}

    def south(self, image: str = "ami-copy", version: str = "2") -> dict:
        w = world(image, version)
        w["lt_versions"] = [dict(w["lt_versions"][0], image="ami-old2"), dict(w["lt_versions"][1], image="ami-copy")]
        w["images"] = [dict(w["images"][0], id="ami-copy")]
        return w

    def test_both_regions_new_or_both_previous(self):
        self.assertEqual(verdict.regions_end_state({"us-east-1": world(), "ap-southeast-1": self.south()}, "shop-c1", self.OLD)[0], "new")
        back = {"us-east-1": world(OLD, "1"), "ap-southeast-1": self.south("ami-old2", "1")}
        self.assertEqual(verdict.regions_end_state(back, "shop-c1", self.OLD)[0], "previous")

    def test_one_region_new_and_the_other_previous_needs_a_human(self):
        split = {"us-east-1": world(), "ap-southeast-1": self.south("ami-old2", "1")}
        state, detail = verdict.regions_end_state(split, "shop-c1", self.OLD)
        self.assertEqual(state, "human")
        self.assertIn("ap-southeast-1: previous", detail)

    def test_a_second_copy_or_a_pending_one_in_a_region_is_a_leak(self):
        two = self.south()
        two["images"].append(dict(two["images"][0], id="ami-copy2"))
        found = verdict.regions_leaks({"us-east-1": world(), "ap-southeast-1": two}, "local", "c1")
        self.assertEqual(found, ["ap-southeast-1: 2 AMIs of commit c1: ami-copy, ami-copy2"])
        pending = self.south()
        pending["images"][0]["state"] = "pending"
        found = verdict.regions_leaks({"us-east-1": world(), "ap-southeast-1": pending}, "local", "c1")
        self.assertTrue(any("ap-southeast-1: AMI ami-copy pending" == f for f in found), found)

    def test_changed_names_the_models_that_differ(self):
        before = {"ec2": {"Ami": {"a": 1}, "Instance": {"i": 1}}, "autoscaling": {"Group": {}}}
        self.assertEqual(verdict.changed(before, copy.deepcopy(before)), [])
        after = copy.deepcopy(before)
        after["ec2"]["Ami"]["b"] = 2
        after["ec2"]["Snapshot"] = {"s": 1}
        self.assertEqual(verdict.changed(before, after), ["ec2.Ami", "ec2.Snapshot"])


class ExitCodes(unittest.TestCase):
    def test_codes_match_states(self):
        self.assertTrue(verdict.code_matches("new", 0, False))
        self.assertFalse(verdict.code_matches("new", 130, True))
        self.assertTrue(verdict.code_matches("previous", 3, False))
        self.assertTrue(verdict.code_matches("previous", 130, True))
        self.assertFalse(verdict.code_matches("previous", 130, False))
        self.assertFalse(verdict.code_matches("previous", 7, False))
        self.assertFalse(verdict.code_matches("previous", 0, False))
        self.assertTrue(verdict.code_matches("human", 4, False))
        self.assertFalse(verdict.code_matches("human", 3, False))
        self.assertTrue(verdict.code_matches("unchanged", 5, False, refused=5))
        self.assertFalse(verdict.code_matches("unchanged", 2, False, refused=5))
        self.assertFalse(verdict.code_matches("unchanged", 0, False))


if __name__ == "__main__":
    unittest.main()
