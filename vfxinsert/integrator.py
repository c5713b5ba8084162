"""The shadow-catcher integrator: object, alpha and shadow ratio in one differentiable pass.

Each camera sample is classified by its first hit: the object (any shape but the ground), the proxy
ground plane, or nothing (the plate supplies the background). One path is traced with next-event
estimation and MIS against the environment emitter (the only light). Every emitter sample is drawn
*without* a visibility test and its shadow ray is traced separately, so at the first ground vertex the
same random numbers give two estimates: the radiance *with* the object (occluded, with bounces off the
object) and *without* it (the same samples, visibility ignored: nothing else occludes the plane). Their
ratio is therefore exactly 1 wherever the object plays no part in a sample (design/mitsuba-notes.md,
section 4: 7.7x less ratio noise than two independent renders, and less work than one stock `prb`).

Film channels (rgba film, box filter): ``R,G,B`` premultiplied object radiance, ``A`` object coverage,
AOVs ``pw.R/G/B`` ground radiance with the object, ``pu.R/G/B`` without it, ``plane.A`` ground coverage.

Emitted radiance is differentiated (the lighting is optimised, never geometry), and every contribution is
linear in it, so the adjoint pass replays the path and back-propagates ``adjoint * contribution`` at each
vertex; no primal pre-pass and no projective terms are needed. With ``material = true`` (the shot's
``[optimize] material``) the object's BSDF parameters are differentiated too, by path replay (Vicini et
al. 2021, as Mitsuba's ``prb``): a primal pre-pass gives each sample's radiance, and at each vertex the
radiance still to come is weighted by d f / f of the BSDF value of the sampled direction, besides the
differentiable BSDF value of the emitter sample. Sampled directions and MIS weights stay detached (their
derivatives cancel in expectation); the unoccluded ground estimate involves no object BSDF.

This module imports Mitsuba at the top (``dr.syntax`` recompiles ``sample`` against module globals),
so import it only after ``env.import_mitsuba()`` has set a variant; scene.py does.
"""
from __future__ import annotations

import drjit as dr
import mitsuba as mi
# A private path in Mitsuba 3.9.1 (mi.ad does not export it): mitsuba is pinned to 3.9.1 for this.
from mitsuba.python.ad.integrators.common import RBIntegrator, mis_weight

AOV_NAMES = ["pw.R", "pw.G", "pw.B", "pu.R", "pu.G", "pu.B", "plane.A"]
"""The AOVs: ground radiance with (pw) and without (pu) the object, ground coverage."""
PLANE_ID = "ground"
"""Shape id of the proxy ground plane (scene.py names the plane with it)."""


class ShadowCatcher(RBIntegrator):
    def __init__(self, props):
        super().__init__(props)
        self.plane_id = props.get("plane_id", PLANE_ID)
        self.material = bool(props.get("material", False))

    def aov_names(self):
        return AOV_NAMES

    def _plane(self, scene):
        for shape in scene.shapes():
            if shape.id() == self.plane_id:
                return mi.ShapePtr(shape)
        return mi.ShapePtr(None)

    @dr.syntax
    def sample(self, mode, scene, sampler, ray, δL, δaovs, state_in, active, **kwargs):
        primal = mode == dr.ADMode.Primal
        ctx = mi.BSDFContext()
        plane = self._plane(scene)
        ray = mi.Ray3f(dr.detach(ray))
        si = scene.ray_intersect(ray, mi.RayFlags.All, coherent=True, active=active)
        hit = active & si.is_valid()
        on_plane = hit & (si.shape == plane)
        on_object = hit & ~on_plane

        # Per-sample adjoints: object samples take the RGB adjoint, ground samples the pw adjoint,
        # plus the pu adjoint on the "without object" estimate.
        δ_with = mi.Spectrum(0)
        δ_unocc = mi.Spectrum(0)
        if not primal:
            δ_pw = mi.Spectrum(δaovs[0], δaovs[1], δaovs[2])
            δ_with = dr.select(on_object, δL, dr.select(on_plane, δ_pw, 0))
            δ_unocc = dr.select(on_plane, mi.Spectrum(δaovs[3], δaovs[4], δaovs[5]), 0)

        L = mi.Spectrum(0)
        L_unocc = mi.Spectrum(0)
        material = self.material and not primal
        L_rem = mi.Spectrum(state_in if material else 0)   # path replay: the radiance still to come
        β = mi.Spectrum(1)
        depth = mi.UInt32(0)
        alive = hit & (self.max_depth > 1)
        while alive:
            bsdf = si.bsdf(ray)

            # Emitter sample, visibility traced separately so both estimates share it.
            em_active = alive & mi.has_flag(bsdf.flags(), mi.BSDFFlags.Smooth)
            ds, _ = scene.sample_emitter_direction(si, sampler.next_2d(), False, em_active)
            em_active &= ds.pdf != 0
            visible = em_active & ~scene.ray_test(si.spawn_ray_to(ds.p), em_active)
            bsdf_em, bsdf_pdf_em = bsdf.eval_pdf(ctx, si, si.to_local(ds.d), em_active)
            mis_em = dr.select(ds.delta, 1.0, mis_weight(ds.pdf, bsdf_pdf_em))
            w_em = β * mis_em * bsdf_em * dr.select(ds.pdf != 0, dr.rcp(ds.pdf), 0)

            # BSDF sample: the environment along it (as if it escaped) with its MIS weight.
            bs, bsdf_weight = bsdf.sample(ctx, si, sampler.next_1d(), sampler.next_2d(), alive)
            ray_next = si.spawn_ray(si.to_world(bs.wo))
            si_next = scene.ray_intersect(ray_next, mi.RayFlags.All, coherent=False, active=alive)
            escaped = alive & ~si_next.is_valid()
            si_env = dr.zeros(mi.SurfaceInteraction3f)
            si_env.wi = -ray_next.d
            si_env.t = dr.inf
            ds_bs = mi.DirectionSample3f(scene, si_env, si)
            bs_delta = mi.has_flag(bs.sampled_type, mi.BSDFFlags.Delta)
            pdf_env_bs = scene.pdf_emitter_direction(si, ds_bs, alive & ~bs_delta)
            mis_bs = dr.select(bs_delta, 1.0, mis_weight(bs.pdf, pdf_env_bs))
            w_bs = β * bsdf_weight * mis_bs
            first = depth == 0

            with dr.resume_grad(when=not primal):
                Le_em = scene.eval_emitter_direction(si, ds, em_active)
                Le_bs = ds_bs.emitter.eval(si_env, alive)
                c_em = w_em * Le_em
                c_bs = w_bs * Le_bs
                c_with = dr.select(visible, c_em, 0) + dr.select(escaped, c_bs, 0)
                c_unocc = dr.select(first & on_plane & em_active, c_em, 0) + \
                    dr.select(first & on_plane & alive, c_bs, 0)
                if material:   # d/d(BSDF): the emitter sample's value, and d f / f times what comes after
                    f_em = bsdf.eval(ctx, si, si.to_local(ds.d), em_active)
                    c_mat = dr.select(visible, β * mis_em * f_em * dr.select(ds.pdf != 0, dr.rcp(ds.pdf), 0)
                                      * dr.detach(Le_em), 0)
                    L_rem = L_rem - dr.detach(dr.select(visible, c_em, 0))
                    f_bs = bsdf.eval(ctx, si, bs.wo, alive)
                    f_det = bsdf_weight * bs.pdf
                    c_mat += L_rem * dr.replace_grad(mi.Spectrum(1), dr.select(f_det != 0, f_bs / f_det, 0))
                    c_with = c_with + c_mat - dr.detach(c_mat)
                    L_rem = L_rem - dr.detach(dr.select(escaped, c_bs, 0))
                if not primal:
                    dr.backward_from(δ_with * c_with + δ_unocc * c_unocc)

            L += dr.detach(c_with)
            L_unocc += dr.detach(c_unocc)
            β *= bsdf_weight
            depth += 1
            alive &= si_next.is_valid() & (depth + 1 < self.max_depth) & (dr.max(β) > 0)
            si = si_next
            ray = mi.Ray3f(ray_next)

        plane_aovs = [dr.select(on_plane, L[0], 0), dr.select(on_plane, L[1], 0), dr.select(on_plane, L[2], 0),
                      dr.select(on_plane, L_unocc[0], 0), dr.select(on_plane, L_unocc[1], 0),
                      dr.select(on_plane, L_unocc[2], 0), dr.select(on_plane, 1.0, 0.0)]
        return dr.select(on_object, L, 0), on_object, plane_aovs, L

    def render_backward(self, scene, params, grad_in, sensor=0, seed=0, spp=0):
        # Overridden for two reasons: no primal pre-pass is needed unless materials are differentiated
        # (contributions are linear in the emitter), and 3.9.1's base class multiplies AOVs by the Color3f
        # sensor weight, which breaks ImageBlock.put for any AD integrator with AOVs (fixed after 3.9.1).
        if isinstance(sensor, int):
            sensor = scene.sensors()[sensor]
        film = sensor.film()
        with dr.suspend_grad():
            sampler, spp = self.prepare(sensor, seed, spp, self.aov_names())
            ray, weight, pos = self.sample_rays(scene, sensor, sampler)
            total = None
            if self.material:   # path replay needs each sample's radiance first (same random numbers)
                _, _, _, total = self.sample(mode=dr.ADMode.Primal, scene=scene, sampler=sampler.clone(), ray=ray,
                                             depth=mi.UInt32(0), δL=None, δaovs=None, state_in=None,
                                             active=mi.Bool(True))
            with dr.resume_grad():
                L = dr.full(mi.Spectrum, 1.0, dr.width(ray))
                dr.enable_grad(L)
                aovs = []
                for _ in self.aov_names():
                    aov = dr.ones(mi.Float, dr.width(ray))
                    dr.enable_grad(aov)
                    aovs.append(aov)
                block = film.create_block()
                block.set_coalesce(block.coalesce() and spp >= 4)
                RBIntegrator._splat_to_block(block, film, pos, value=L * weight, weight=1.0, alpha=1.0,
                                             aovs=[aov * weight[0] for aov in aovs], wavelengths=ray.wavelengths)
                film.put_block(block)
                image = film.develop()
                dr.set_grad(image, grad_in)
                dr.enqueue(dr.ADMode.Backward, image)
                dr.traverse(dr.ADMode.Backward)
                δL = dr.grad(L)
                δaovs = dr.grad(aovs)
            film.clear()
            self.sample(mode=dr.ADMode.Backward, scene=scene, sampler=sampler, ray=ray, depth=mi.UInt32(0),
                        δL=δL, δaovs=δaovs, state_in=total, active=mi.Bool(True))
            del δL, δaovs, ray, weight, pos, sampler
            dr.eval()

    def to_string(self):
        return f"ShadowCatcher[max_depth={self.max_depth}, plane_id={self.plane_id!r}, material={self.material}]"


mi.register_integrator("vfx_shadow_catcher", lambda props: ShadowCatcher(props))
