#!/usr/bin/env python3
"""Test-time PDF tools for congvan's PDF tests (never used by the product).

  tool.py make OUT [--producer reportlab|gs|libreoffice] [--pages N] [--text T]
      a fresh PDF from a Python library (reportlab), from Ghostscript, or from LibreOffice
      (`soffice --convert-to pdf` of a Vietnamese text, with fonts embedded)
  tool.py sign IN OUT --key KEY.pem --cert CERT.pem [--chain CA.pem]... [--field NAME]
              [--box x1,y1,x2,y2] [--page N] [--name NAME]
      a competent signer's signature made with pyHanko (PAdES B-B), visible when --box is given
  tool.py validate IN --trust ROOT.pem [--crl CRL.der]...
      pyHanko's validation of every signature: one line per signature, as
      `<field> intact=<bool> valid=<bool> trusted=<bool> coverage=<...> modification=<...>`,
      then ` timestamp=<intact>/<valid>/<trusted>/<ISO time>` for a signature with a signature
      time-stamp (PAdES B-T), the timestamp's trust judged with the same roots
  tool.py token IN OUT
      the last signature's signature time-stamp token (DER) into OUT; prints the SHA-256 (hex)
      of that signature's value, which the token's message imprint must equal
  tool.py append IN OUT
      an incremental update that changes page content after the last signature
"""
import argparse
import io
import subprocess
import sys


def make(args):
    if args.producer == "reportlab":
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen import canvas

        c = canvas.Canvas(args.out, pagesize=A4)
        for i in range(args.pages):
            c.setFont("Helvetica", 13)
            c.drawString(72, 770, "UY BAN NHAN DAN QUAN HA DONG")
            c.drawString(72, 740, f"{args.text} - trang {i + 1}")
            c.showPage()
        c.save()
    elif args.producer == "gs":
        ps = io.StringIO()
        for i in range(args.pages):
            ps.write(f"/Helvetica findfont 13 scalefont setfont 72 770 moveto ({args.text} {i + 1}) show showpage\n")
        subprocess.run(
            ["gs", "-q", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", f"-sOutputFile={args.out}", "-"],
            input=ps.getvalue().encode(), check=True,
        )
    elif args.producer == "libreoffice":
        import os
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "doc.txt")
            with open(src, "w", encoding="utf-8") as f:
                for i in range(args.pages):
                    if i:
                        f.write("\f")
                    f.write(f"ỦY BAN NHÂN DÂN QUẬN HÀ ĐÔNG\n{args.text} - trang {i + 1}\n")
            # A profile of its own: two soffice runs sharing one wait for each other or fail.
            subprocess.run(
                ["soffice", "--headless", f"-env:UserInstallation=file://{tmp}/profile",
                 "--convert-to", "pdf", "--outdir", tmp, src],
                check=True, capture_output=True, timeout=180,
            )
            shutil.move(os.path.join(tmp, "doc.pdf"), args.out)
    else:
        sys.exit(f"unknown producer {args.producer}")


def sign(args):
    from pyhanko.sign import signers, fields
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    signer = signers.SimpleSigner.load(args.key, args.cert, ca_chain_files=tuple(args.chain or ()))
    if signer is None:
        sys.exit("cannot load the signer's key or certificate")
    with open(args.inp, "rb") as f:
        w = IncrementalPdfFileWriter(f, strict=False)
        spec = None
        if args.box:
            box = tuple(int(v) for v in args.box.split(","))
            spec = fields.SigFieldSpec(sig_field_name=args.field, on_page=args.page, box=box)
        meta = signers.PdfSignatureMetadata(field_name=args.field, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256", name=args.name)
        out = signers.PdfSigner(meta, signer=signer, new_field_spec=spec).sign_pdf(w)
        with open(args.out, "wb") as o:
            o.write(out.getbuffer())


def validate(args):
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko.keys import load_cert_from_pemder

    crls = []
    for c in args.crl or ():
        with open(c, "rb") as f:
            crls.append(f.read())
    trust = [load_cert_from_pemder(p) for p in args.trust]
    with open(args.inp, "rb") as f:
        r = PdfFileReader(f, strict=False)
        if not r.embedded_signatures:
            print("no signatures")
        for sig in r.embedded_signatures:
            vc = ValidationContext(trust_roots=trust, crls=crls, allow_fetching=False)
            st = validate_pdf_signature(sig, vc)
            print(
                f"{sig.field_name} intact={st.intact} valid={st.valid} trusted={st.trusted} "
                f"coverage={st.coverage.name} modification={st.modification_level.name if st.modification_level else None}"
                + (f" timestamp={ts.intact}/{ts.valid}/{ts.trusted}/{ts.timestamp.isoformat()}"
                   if (ts := st.timestamp_validity) is not None else "")
            )


def token(args):
    import hashlib
    from pyhanko.pdf_utils.reader import PdfFileReader

    with open(args.inp, "rb") as f:
        r = PdfFileReader(f, strict=False)
        si = r.embedded_signatures[-1].signer_info
        attrs = si["unsigned_attrs"]
        tokens = [a["values"][0] for a in (attrs if attrs.native is not None else [])
                  if a["type"].native == "signature_time_stamp_token"]
        if len(tokens) != 1:
            sys.exit(f"{len(tokens)} signature time-stamp tokens")
        with open(args.out, "wb") as o:
            o.write(tokens[0].dump())
        print(hashlib.sha256(si["signature"].native).hexdigest())


def append(args):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils import generic

    with open(args.inp, "rb") as f:
        w = IncrementalPdfFileWriter(f, strict=False)
        page_ref = w.root["/Pages"]["/Kids"][0]
        page = page_ref.get_object()
        stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 400 Td (CHANGED) Tj ET")
        ref = w.add_object(stream)
        contents = page["/Contents"]
        arr = generic.ArrayObject(list(contents) if isinstance(contents, generic.ArrayObject) else [contents])
        arr.append(ref)
        page["/Contents"] = arr
        w.update_container(page)
        out = io.BytesIO()
        w.write(out)
        with open(args.out, "wb") as o:
            o.write(out.getvalue())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--producer", default="reportlab")
    m.add_argument("--pages", type=int, default=1)
    m.add_argument("--text", default="Cong van so 26/CT-UBND")
    s = sub.add_parser("sign")
    s.add_argument("inp")
    s.add_argument("out")
    s.add_argument("--key", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--chain", action="append")
    s.add_argument("--field", default="Signature1")
    s.add_argument("--box")
    s.add_argument("--page", type=int, default=0)
    s.add_argument("--name")
    v = sub.add_parser("validate")
    v.add_argument("inp")
    v.add_argument("--trust", action="append", required=True)
    v.add_argument("--crl", action="append")
    t = sub.add_parser("token")
    t.add_argument("inp")
    t.add_argument("out")
    a = sub.add_parser("append")
    a.add_argument("inp")
    a.add_argument("out")
    args = p.parse_args()
    {"make": make, "sign": sign, "validate": validate, "append": append, "token": token}[args.cmd](args)


if __name__ == "__main__":
    main()
