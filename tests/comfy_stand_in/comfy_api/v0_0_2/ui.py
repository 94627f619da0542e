"""Stand-in of `comfy_api.v0_0_2.ui`: the UI outputs the pack and the test executor's core nodes return."""

from __future__ import annotations

from .io import FolderType


class SavedResult(dict):
    def __init__(self, filename: str, subfolder: str, type: FolderType):
        super().__init__(filename=filename, subfolder=subfolder, type=type.value)


class PreviewText:
    def __init__(self, value: str, **kwargs):
        self.value = value

    def as_dict(self) -> dict:
        return {"text": (self.value,)}


class PreviewVideo:
    def __init__(self, values: list, **kwargs):
        self.values = values

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (True,)}


class PreviewUI3D:
    def __init__(self, model_file, camera_info, **kwargs):
        self.model_file, self.camera_info = model_file, camera_info

    def as_dict(self) -> dict:
        return {"result": [self.model_file, self.camera_info]}
