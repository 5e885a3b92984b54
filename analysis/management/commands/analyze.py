import json

from django.core.management.base import BaseCommand, CommandError

from analysis import services
from analysis.models import AnalysisRun
from analysis.selectors import run_served
from surveys.models import Engagement


class Command(BaseCommand):
    help = "Run a wave's analysis now (synchronously) and print a summary, or the result document with --json."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The engagement's short name.")
        parser.add_argument("--wave", type=int, help="Wave number (default: the latest wave).")
        parser.add_argument("--json", action="store_true", help="Print the result document alone on standard output.")

    def handle(self, *args, slug: str, wave: int | None, **options):
        engagement = Engagement.objects.filter(slug=slug).first()
        if engagement is None:
            raise CommandError(f"There is no engagement “{slug}”.")
        waves = engagement.waves.order_by("-number")
        target = waves.filter(number=wave).first() if wave is not None else waves.first()
        if target is None:
            raise CommandError(f"{engagement} has no wave {wave}." if wave is not None else f"{engagement} has no wave.")
        # Progress goes to standard error, so --json output stays a clean document.
        log = self.stderr
        log.write(f"Analysing {engagement} wave {target.number}…")
        try:
            run = services.analysis_run_now(wave=target)
        except Exception as exc:
            raise CommandError(f"The analysis failed: {type(exc).__name__}: {exc}") from exc
        if run.status == AnalysisRun.Status.SKIPPED:
            log.write("Answers unchanged since the last run; printing its result.")
            run = run_served(target)
        log.write(f"Done in {run.duration_seconds or 0:.1f} s with the {run.engine} engine.")
        if options["json"]:
            self.stdout.write(_dumps(run.result))
            return
        self.stdout.write(_summary(run.result))


def _dumps(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False)


def _summary(result: dict) -> str:
    lines = [f"{result['engagement']['name']} — wave {result['wave']['number']} ({result['engine']['name']})"]
    for group, info in result.get("groups", {}).items():
        shown = "suppressed (too few to show)" if info.get("suppressed") else f"{info.get('respondents')} respondents"
        lines.append(f"  {group}: {shown}")
    themes = sum(len(q.get("themes", [])) for q in result.get("questions", {}).values())
    lines.append(f"  themes across questions: {themes}")
    lines.append(f"  gaps: {len(result.get('gaps', []))}, contradictions: {len(result.get('contradictions', []))}")
    overall = result.get("alignment", {}).get("overall")
    if overall is not None:
        lines.append(f"  alignment overall: {overall:.0f}/100")
    return "\n".join(lines)
