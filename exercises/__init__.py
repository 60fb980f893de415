"""exercises: rewrite the project's key functions yourself, grade them, and run the course on them.

    exercises/student/<name>.py   your files: the reference's signature and a TODO to replace
    registry.py                   the exercises, their references and the lesson to reread
    checks/                       the reference's checks, written against any implementation
    grading.py                    runs the checks and collects what failed
    switch.py                     swaps your version into the model, the trainers and the lessons
    student_copy.py               copies the project with the solutions taken out

    python -m exercises --help
"""
