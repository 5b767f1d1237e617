"""
Student specialization in a two-layer ReLU teacher-student network
==================================================================

An over-realised student learns a ReLU teacher whose hidden nodes have fan-out strengths 1/j^p (Tian,
ICML 2020): strong teacher nodes are recovered first. Recovery rate and time to alignment per teacher
node, 4 runs, small setting.
"""

from teachtheory.teacher_student import figure_recovery_by_node, specialization_config, train_teacher_student

results = {}
for p in (0.0, 2.0):
    config = specialization_config("small", 600, strength_decay=p)
    results[f"p = {p:g}"] = train_teacher_student(config, runs=4, seed=0)
fig = figure_recovery_by_node(results, None, title="recovery by teacher node (small setting)")
