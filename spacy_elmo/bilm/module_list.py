"""ModuleListOf: torch's nn.ModuleList whose items have one known type.

nn.ModuleList hands out plain `Module`s, so a type checker sees `Tensor | Module` for every weight read
through one (`layer.bias`, `conv.weight`). This subclass only narrows those types: it adds no state, and its
state_dict keys are those of nn.ModuleList.
"""
from typing import Generic, Iterable, Iterator, TypeVar, Union, cast, overload

from torch import nn

M = TypeVar("M", bound=nn.Module)


class ModuleListOf(nn.ModuleList, Generic[M]):
    def __init__(self, modules: Iterable[M]) -> None:
        super().__init__(modules)

    def __iter__(self) -> Iterator[M]:
        return cast(Iterator[M], super().__iter__())

    @overload
    def __getitem__(self, idx: slice) -> "ModuleListOf[M]": ...

    @overload
    def __getitem__(self, idx: int) -> M: ...

    def __getitem__(self, idx: Union[int, slice]) -> Union[M, "ModuleListOf[M]"]:
        return cast(Union[M, "ModuleListOf[M]"], super().__getitem__(idx))
