"""teachtheory: iterative machine teaching and teacher-student learning, theory against simulation."""

from . import learners, problems, teachers
from .engine import Trajectory, teach
from .problems import Problem

__version__ = "0.1.0"
__all__ = ["teach", "Trajectory", "Problem", "learners", "teachers", "problems", "__version__"]
