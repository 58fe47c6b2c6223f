"""Contract: what the local CodeCommit GetFolder (sagepipe.local.codecommit.get_folder) assumes about moto 5.2.5."""

from __future__ import annotations

import inspect

from moto.codecommit.responses import CodeCommitResponse
from moto.core.responses import BaseResponse

from sagepipe.local.codecommit import get_folder
from sagepipe.local.core.moto_internals import original_attribute


def test_moto_still_lacks_getfolder() -> None:
    """The gap: moto's CodeCommit has no get_folder handler of its own (if it gains one, re-check the adapter)."""
    assert original_attribute(CodeCommitResponse, "get_folder") is None, (
        "moto's CodeCommitResponse now has get_folder; sagepipe.local.codecommit.get_folder may be redundant"
    )


def test_moto_dispatches_an_operation_to_the_method_of_its_snake_case_name() -> None:
    """The adapter adds a method to the class: moto must still find handlers among the class's functions."""
    source = inspect.getsource(BaseResponse.call_action)
    assert "method_names_from_class(self.__class__)" in source, (
        "moto's BaseResponse.call_action no longer dispatches by the class's method names; the get_folder adapter "
        "added to CodeCommitResponse would not be called"
    )


def test_the_adapter_installs_a_function_moto_can_find() -> None:
    get_folder.install()
    assert inspect.isfunction(CodeCommitResponse.__dict__["get_folder"])
