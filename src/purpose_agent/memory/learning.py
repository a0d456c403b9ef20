"""Compatibility path: the default learning path (``Learning``) now lives one layer up, in
``purpose_agent.loop.learning``, because it runs the loop; the teacher resolver lives in
``purpose_agent.memory.distiller``. Only ``resolve_teacher`` is kept here, for scripts that
import it from the old path."""

from purpose_agent.memory.distiller import resolve_teacher

__all__ = ["resolve_teacher"]
