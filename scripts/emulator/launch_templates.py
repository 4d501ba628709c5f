"""Launch template versions as AWS keeps them: CreateLaunchTemplateVersion with SourceVersion,
DescribeLaunchTemplateVersions with Versions ($Latest/$Default/numbers), MinVersion/MaxVersion,
MaxResults/NextToken paging and newest-first order, and DeleteLaunchTemplateVersions (version
numbers are never reused; the default version cannot be deleted).

Follows the Amazon EC2 API Reference — "CreateLaunchTemplateVersion" (SourceVersion: "the new
version inherits the same launch parameters as the source version, except for parameters that you
specify in LaunchTemplateData") and "DescribeLaunchTemplateVersions" (MaxResults 1-200 with
NextToken; the example answer lists version 2 before version 1) and "DeleteLaunchTemplateVersions"
(per-version results; "You can't delete the default version of a launch template").

moto ignored SourceVersion (a version made of only ImageId lost the instance type, security groups
and tags), stopped at 15 versions with no NextToken, and stored UserData of new versions as a plain
string that later crashed launches from that version; it had no DeleteLaunchTemplateVersions.
"""

from __future__ import annotations

import base64
import copy

from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.ec2.exceptions import InvalidParameterCombination, InvalidParameterValue
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data

from .errors import AwsError


def _version_result(self, template, version) -> dict:
    return {
        "CreateTime": version.create_time,
        "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
        "DefaultVersion": template.is_default(version),
        "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "VersionDescription": version.description,
        "VersionNumber": version.number,
    }


def create_launch_template_version(self: LaunchTemplates) -> ActionResult:
    name = self._get_param("LaunchTemplateName")
    tmpl_id = self._get_param("LaunchTemplateId")
    if name and tmpl_id:
        raise InvalidParameterCombination("Specify either the launch template ID or the launch template name, but not both.")
    template = (
        self.ec2_backend.get_launch_template(tmpl_id)
        if tmpl_id
        else self.ec2_backend.get_launch_template_by_name(name)
    )
    description = self._get_param("VersionDescription")
    if description is not None and len(description) > 255:
        raise AwsError(
            "InvalidParameterValue",
            "Value for parameter VersionDescription is invalid: it must be at most 255 characters.",
        )
    given = dict(self._get_param("LaunchTemplateData", {}) or {})
    if "UserData" in given:
        given["UserData"] = parse_user_data(given["UserData"])
    source = self._get_param("SourceVersion")
    self.error_on_dryrun()
    if source is not None:
        data = copy.deepcopy(template.get_version(source).data)
        data.update(given)  # top-level parameters you specify replace the source's
    else:
        data = given
    version = template.create_version(data, description)
    return ActionResult({"LaunchTemplateVersion": _version_result(self, template, version)})


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
        assert raw.startswith("offset:")
        return int(raw.split(":", 1)[1])
    except Exception:
        raise AwsError("InvalidNextToken", "The specified NextToken is not valid.")


def describe_launch_template_versions(self: LaunchTemplates) -> ActionResult:
    name = self._get_param("LaunchTemplateName")
    template_id = self._get_param("LaunchTemplateId")
    versions = [str(v) for v in self._get_param("Versions", []) or []]
    min_version = self._get_param("MinVersion")
    max_version = self._get_param("MaxVersion")
    max_results = self._get_int_param("MaxResults")
    offset = _offset(self._get_param("NextToken"))
    self.error_on_dryrun()
    if name and template_id:
        raise InvalidParameterCombination("Specify either the launch template ID or the launch template name, but not both.")
    if max_results is not None and not 1 <= max_results <= 200:
        raise InvalidParameterValue(
            f"Value ( {max_results} ) for parameter maxResults is invalid. Parameter must be between 1 and 200."
        )
    if name or template_id:
        template = (
            self.ec2_backend.get_launch_template(template_id)
            if template_id
            else self.ec2_backend.get_launch_template_by_name(name)
        )
        if versions:
            picked = [template.get_version(v) for v in versions]
        else:
            picked = list(template.versions)
        if min_version:
            picked = [v for v in picked if v.number >= int(min_version)]
        if max_version:
            picked = [v for v in picked if v.number <= int(max_version)]
        seen, rows = set(), []
        for v in sorted(picked, key=lambda v: -v.number):
            if v.number not in seen:
                seen.add(v.number)
                rows.append((template, v))
    else:
        rows = self.ec2_backend.describe_launch_template_versions(
            template_name=None,
            template_id=None,
            versions=versions,
            min_version=None,
            max_version=None,
            max_results=10**9,
        )
    page = rows[offset:] if max_results is None else rows[offset : offset + max_results]
    next_offset = offset + len(page)
    result = {"LaunchTemplateVersions": [_version_result(self, t, v) for t, v in page]}
    if next_offset < len(rows):
        result["NextToken"] = _token(next_offset)
    return ActionResult(result)


def delete_launch_template_versions(self: LaunchTemplates) -> ActionResult:
    name = self._get_param("LaunchTemplateName")
    tmpl_id = self._get_param("LaunchTemplateId")
    versions = [str(v) for v in self._get_param("Versions", []) or []]
    self.error_on_dryrun()
    if name and tmpl_id:
        raise InvalidParameterCombination("Specify either the launch template ID or the launch template name, but not both.")
    if len(versions) > 200:
        raise InvalidParameterValue("You can delete up to 200 launch template versions in a single request.")
    template = (
        self.ec2_backend.get_launch_template(tmpl_id)
        if tmpl_id
        else self.ec2_backend.get_launch_template_by_name(name)
    )
    done, failed = [], []
    for ref in versions:
        row = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name}
        match = [v for v in template.versions if str(v.number) == ref]
        if not ref.isdigit() or not match:
            failed.append(dict(row, VersionNumber=int(ref) if ref.isdigit() else None, ResponseError={
                "Code": "launchTemplateVersionDoesNotExist",
                "Message": f"The specified launch template version does not exist: {ref}"}))
        elif template.default_version_number == match[0].number:
            failed.append(dict(row, VersionNumber=match[0].number, ResponseError={
                "Code": "unexpectedError",
                "Message": "You can't delete the default version of a launch template; "
                           "first assign a different version as the default."}))
        else:
            template.versions.remove(match[0])
            done.append(dict(row, VersionNumber=match[0].number))
    return ActionResult({"SuccessfullyDeletedLaunchTemplateVersions": done,
                         "UnsuccessfullyDeletedLaunchTemplateVersions": failed})


def _get_version(self, num):
    """By number, not by list position: deleted versions leave gaps."""
    from moto.ec2.exceptions import InvalidLaunchTemplateVersionNotFound

    ref = str(num)
    if ref.lower() == "$latest":
        return self.versions[-1]
    if ref.lower() == "$default":
        ref = str(self.default_version_number)
    for v in self.versions:
        if str(v.number) == ref:
            return v
    raise InvalidLaunchTemplateVersionNotFound(template_id=self.id, version=num)


def _create_version(self, data, description):
    from moto.ec2.models.launch_templates import LaunchTemplateVersion

    number = getattr(self, "_la_last_number", len(self.versions)) + 1  # numbers are never reused
    self._la_last_number = number
    version = LaunchTemplateVersion(self, number, data, description)
    self.versions.append(version)
    return version


def install() -> None:
    from moto.ec2.models.launch_templates import LaunchTemplate

    LaunchTemplate.get_version = _get_version
    LaunchTemplate.default_version = lambda self: _get_version(self, "$Default")
    LaunchTemplate.create_version = _create_version
    LaunchTemplates.delete_launch_template_versions = delete_launch_template_versions
    LaunchTemplates.create_launch_template_version = create_launch_template_version
    LaunchTemplates.describe_launch_template_versions = describe_launch_template_versions
    # Launch templates created by moto's own handler already parse UserData; keep a guard for
    # versions whose UserData arrived as a plain string by any other path.
    from moto.ec2.models.launch_templates import LaunchTemplateVersion

    def user_data(self):
        ud = self.data.get("UserData")
        if ud is None or isinstance(ud, Base64EncodedString):
            return ud
        return parse_user_data(ud)

    LaunchTemplateVersion.user_data = property(user_data)
