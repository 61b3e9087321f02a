from django import forms

from .models import KycApplication

UPLOAD_HELP = "PDF, PNG, JPEG or WebP, at most 10 MB. Judged by content, not by name."


class KycApplicationForm(forms.ModelForm):
    """The applicant's details and documents. Files are validated by the service (with
    config.uploads.validate_upload), the one place for upload rules."""

    identity_document = forms.FileField(
        required=False, label="Identity document (passport or national ID card)", help_text=UPLOAD_HELP
    )
    proof_of_address = forms.FileField(
        required=False,
        label="Proof of address (utility bill or bank statement, under 3 months old)",
        help_text=UPLOAD_HELP,
    )

    class Meta:
        model = KycApplication
        fields = list(KycApplication.APPLICANT_FIELDS)
        labels = {
            "legal_name": "Full legal name (as on your identity document)",
            "self_certified": "I certify that the investor category I chose applies to me and that these details are true and complete.",
        }
        widgets = {
            "date_of_birth": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "address": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "investor_category": "Accredited and professional investors must meet the legal thresholds of their country "
            "(income, net worth or professional status); some offerings are open only to them.",
        }

    def __init__(self, *args, have_documents=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name, kind in (("identity_document", "identity"), ("proof_of_address", "proof_of_address")):
            if kind in have_documents:
                self.fields[name].help_text = "Already uploaded; choose a file only to replace it. " + UPLOAD_HELP
