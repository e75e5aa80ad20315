"""The Hub metric Space's widget: this folder's module behind a small Gradio form.

evaluate's template calls ``evaluate.utils.launch_gradio_widget``, which needs Gradio 3
(``gr.inputs``); this is the same form in the current Gradio API, so the Space runs with the
Gradio the project pins (README front matter ``sdk_version``).
"""

from pathlib import Path

import evaluate
import gradio as gr

# the module file beside this app: the same code in the Space and in the project
module = evaluate.load(str(Path(__file__).resolve().parent / "attribution_metrics.py"))


def score(table) -> dict:
    """Metrics of the (prediction, reference) label ids in the form's table."""
    rows = [r for r in table.values.tolist() if all(str(v).strip() != "" for v in r)]
    if not rows:
        raise gr.Error("enter at least one row: a predicted and a true label id")
    return module.compute(predictions=[int(float(p)) for p, _ in rows],
                          references=[int(float(r)) for _, r in rows])


demo = gr.Interface(
    fn=score,
    inputs=gr.Dataframe(headers=["predictions", "references"], datatype=["number", "number"],
                        column_count=(2, "fixed"),
                        value=[[0, 0], [1, 1], [1, 0], [2, 2]]),
    outputs=gr.JSON(label="metrics"),
    title="ImageAttributionBench attribution metrics",
    description=module.info.description,
    article=module.info.inputs_description.replace("\n", "  \n"),
)

if __name__ == "__main__":
    demo.launch()
