"""The data-preparation step, defined in Python with ``azure.ai.ml.command()``.

Azure ML runs the command below in ``aml/environment.yml``; the local runner runs
the very same command line on this machine.
"""

from pathlib import Path

from azure.ai.ml import Input, Output, command

HERE = Path(__file__).parent

data_prep = command(
    name="diabetes_blood_pressure_data_prep",
    version="1",
    display_name="Prepare data",
    description="Validate the CSV, drop rows without a target and unusable columns, split into train and test.",
    code=HERE,
    # Shared with other components: Azure ML copies it beside prep.py when it uploads this folder, as local runs do.
    additional_includes=[str(HERE.parent / "common" / "argument_types.py")],
    # Azure ML fills in ${{inputs.*}} and ${{outputs.*}} when the step starts, and runs the command in a
    # shell: string and data inputs stand in single quotes (`check` insists; a data input's path ends with its
    # file's name), and column names, which come from the CSV and may hold anything, arrive base64-encoded JSON.
    # $[[...]] drops an option whose input is unset.
    command=(
        "python prep.py"
        " --input-data '${{inputs.input_data}}'"
        " --target-column '${{inputs.target_column}}'"
        " $[[--numeric-columns '${{inputs.numeric_columns}}']]"
        " $[[--categorical-columns '${{inputs.categorical_columns}}']]"
        " --test-size ${{inputs.test_size}}"
        " --random-seed ${{inputs.random_seed}}"
        " $[[--cv-folds ${{inputs.cv_folds}}]]"
        " --prepped-data ${{outputs.prepped_data}}"
    ),  # one command line for Azure ML and the local runner
    inputs={
        "input_data": Input(type="uri_file", description="The raw CSV."),
        "target_column": Input(type="string", description="Numeric column to predict, base64-encoded JSON."),
        "numeric_columns": Input(
            type="string", optional=True, description="Column names, base64-encoded JSON list; unset: inferred."
        ),
        "categorical_columns": Input(
            type="string", optional=True, description="Column names, base64-encoded JSON list; unset: inferred."
        ),
        "test_size": Input(type="number", default=0.2, min=0.01, max=0.99, description="Fraction held out."),
        "random_seed": Input(type="integer", default=42, min=0, max=2**32 - 1, description="Seed of the shuffle."),
        "cv_folds": Input(
            type="integer", optional=True, min=2, description="Folds to cross-validate the train split in; unset: none."
        ),
    },
    outputs={"prepped_data": Output(type="uri_folder", description="Parquet splits and features.json.")},
    environment="azureml:diabetes-blood-pressure-env@latest",
    is_deterministic=True,
).component
